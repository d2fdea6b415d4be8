"""Workspace files: list, read, write, upload; paths stay inside the workspace and sizes are capped."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.pipeline_fixtures import WRITE_FILE, write_file
from tests.conftest import CREATE_PROJECT, GraphQLClient, create_user_with_cli, tree_digest, workspace_of
from tests.reliability import ReliabilityLog
from tests.stack import Stack, running_stack

MakeProject = Callable[..., Awaitable[dict[str, Any]]]

LIST_AND_READ = """
query($id: ID!, $folder: String!, $file: String!) {
  project(id: $id) {
    ... on Project {
      files(path: $folder) {
        __typename
        ... on Folder { path entries { path name kind size } }
        ... on Error { message }
      }
      file(path: $file) {
        __typename
        ... on TextFile { path content size }
        ... on Error { message }
        ... on ValidationError { issues { path } }
      }
    }
  }
}
"""

UPLOAD = """
mutation($projectId: ID!, $path: String!, $file: Upload!) {
  uploadFile(projectId: $projectId, path: $path, file: $file) {
    __typename
    ... on FileWritten { file { path size kind } }
    ... on Error { message }
    ... on ValidationError { issues { path message } }
  }
}
"""


async def upload(gql: GraphQLClient, project_id: str, path: str, content: bytes) -> dict[str, Any]:
    operations = {"query": UPLOAD, "variables": {"projectId": project_id, "path": path, "file": None}}
    response = await gql.http.post(
        "/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.file"]})},
        files={"0": ("upload.bin", content, "application/octet-stream")},
        headers=gql.headers,
    )
    assert response.status_code in (200, 413), response.text
    body: dict[str, Any] = response.json()
    return body


async def test_write_list_and_read_files(gql: GraphQLClient, make_project: MakeProject) -> None:
    project = await make_project()
    await write_file(gql, project["id"], "src/train.py", "print('train')\n")

    data = (await gql.execute(LIST_AND_READ, {"id": project["id"], "folder": "src", "file": "src/train.py"}))["project"]

    assert data["files"] == {
        "__typename": "Folder",
        "path": "src",
        "entries": [{"path": "src/train.py", "name": "train.py", "kind": "FILE", "size": 15}],
    }
    assert data["file"] == {"__typename": "TextFile", "path": "src/train.py", "content": "print('train')\n", "size": 15}
    root_listing = await gql.execute(LIST_AND_READ, {"id": project["id"], "folder": ".", "file": "src/train.py"})
    names = [e["name"] for e in root_listing["project"]["files"]["entries"]]
    assert "src" in names and ".dvc" in names and ".git" not in names


async def test_upload_streams_a_file_into_the_workspace(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    project = await make_project()
    content = b"x,y\n" + b"1,2\n" * 10_000

    body = await upload(gql, project["id"], "data/raw.csv", content)

    assert body["data"]["uploadFile"] == {
        "__typename": "FileWritten",
        "file": {"path": "data/raw.csv", "size": len(content), "kind": "FILE"},
    }
    assert (workspace_of(stack, project["id"]) / "data/raw.csv").read_bytes() == content


async def test_oversized_upload_is_refused_and_leaves_nothing(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    project = await make_project()
    root = workspace_of(stack, project["id"])
    before = tree_digest(root)
    limit = 50 * 1024 * 1024

    body = await upload(gql, project["id"], "big/blob.bin", b"\0" * (limit + 1))

    if body.get("data"):
        assert body["data"]["uploadFile"]["__typename"] == "PayloadTooLargeError"
    else:
        assert "exceeds" in body["errors"][0]["message"]
    assert tree_digest(root) == before


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "../escape.txt", "a/../../escape.txt", ".git/config", ".dvc/config", "outside/x.txt", ""],
)
async def test_paths_outside_the_workspace_are_refused(
    path: str, gql: GraphQLClient, make_project: MakeProject, stack: Stack, reliability: ReliabilityLog
) -> None:
    project = await make_project()
    root = workspace_of(stack, project["id"])
    (root / "outside").symlink_to("/tmp")
    before = tree_digest(root)

    written = (await gql.execute(WRITE_FILE, {"input": {"projectId": project["id"], "path": path, "content": "x"}}))[
        "writeFile"
    ]
    read = (await gql.execute(LIST_AND_READ, {"id": project["id"], "folder": ".", "file": path}))["project"]["file"]

    assert written["__typename"] == "ValidationError", written
    assert written["issues"][0]["path"] == "path"
    assert read["__typename"] == "ValidationError", read
    assert tree_digest(root) == before
    reliability.record(
        "Bad input: file paths",
        repr(path),
        tried=f"writeFile and project.file with path {path!r}",
        observed=f"ValidationError at `path`: {written['message'][:120]}; workspace unchanged",
    )


async def test_pipeline_files_are_changed_through_pipeline_mutations_only(
    gql: GraphQLClient, make_project: MakeProject
) -> None:
    project = await make_project()
    result = (
        await gql.execute(
            WRITE_FILE, {"input": {"projectId": project["id"], "path": "pipelines/x/dvc.yaml", "content": "stages: {}"}}
        )
    )["writeFile"]
    assert result["__typename"] == "ValidationError"
    assert "createPipeline" in result["message"]


async def test_oversized_text_write_and_missing_file(gql: GraphQLClient, make_project: MakeProject) -> None:
    project = await make_project()
    too_big = "y" * (1024 * 1024 + 1)
    response = await gql.post(
        WRITE_FILE, {"input": {"projectId": project["id"], "path": "big.txt", "content": too_big}}
    )
    assert response.status_code == 413

    missing = (await gql.execute(LIST_AND_READ, {"id": project["id"], "folder": "nope", "file": "nope.txt"}))["project"]
    assert missing["files"]["__typename"] == "NotFoundError"
    assert missing["file"]["__typename"] == "NotFoundError"


async def test_a_file_on_the_way_is_a_clear_error(gql: GraphQLClient, make_project: MakeProject) -> None:
    # Found by the property-based tests: this used to be an internal error.
    project = await make_project()
    await write_file(gql, project["id"], "notes", "a file, not a folder")

    result = (
        await gql.execute(
            WRITE_FILE, {"input": {"projectId": project["id"], "path": "notes/inner.txt", "content": "x"}}
        )
    )["writeFile"]

    assert result["__typename"] == "ValidationError"
    assert "is a file, not a folder" in result["message"]


async def test_the_text_file_limit_is_reached_below_the_body_limit(tmp_path: Path, reliability: ReliabilityLog) -> None:
    # MAX_TEXT_FILE_BYTES (1000 here) well under MAX_REQUEST_BYTES (1 MiB): the service's own limit answers, typed.
    with running_stack(tmp_path / "workspaces", tmp_path, MAX_TEXT_FILE_BYTES="1000") as small:
        async with httpx.AsyncClient(base_url=small.base_url, timeout=60) as http:
            user = GraphQLClient(http, create_user_with_cli(small, "texts"), "texts")
            project = (await user.execute(CREATE_PROJECT, {"input": {"name": "texts"}}))["createProject"]["project"]
            root = workspace_of(small, project["id"])
            at_limit = await user.post(
                WRITE_FILE, {"input": {"projectId": project["id"], "path": "ok.txt", "content": "é" * 500}}
            )
            over = await user.post(
                WRITE_FILE, {"input": {"projectId": project["id"], "path": "big.txt", "content": "é" * 500 + "x"}}
            )
            (root / "large.txt").write_text("z" * 1001)
            read = (await user.execute(LIST_AND_READ, {"id": project["id"], "folder": ".", "file": "large.txt"}))[
                "project"
            ]["file"]

    assert at_limit.status_code == 200 and at_limit.json()["data"]["writeFile"]["__typename"] == "FileWritten"
    assert over.status_code == 200, "the body limit must not be what answers"
    refused = over.json()["data"]["writeFile"]
    assert refused["__typename"] == "PayloadTooLargeError" and "1000" in refused["message"], refused
    assert not (root / "big.txt").exists()
    assert read["__typename"] == "PayloadTooLargeError", read
    reliability.record(
        "Bad input: file sizes",
        "text file over MAX_TEXT_FILE_BYTES, request under the body limit",
        tried="writeFile of 1,001 UTF-8 bytes and a read of a 1,001-byte file with MAX_TEXT_FILE_BYTES=1000",
        observed=f"HTTP {over.status_code} {refused['__typename']}: {refused['message']}; nothing written; "
        f"the read answers {read['__typename']}",
    )
