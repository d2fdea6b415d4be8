"""Projects end to end: created empty or cloned, listed with cursors, deleted, with typed errors."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.conftest import CREATE_PROJECT, GraphQLClient, MakeUser, workspace_of
from tests.stack import ROOT, Stack

LIST_PROJECTS = """
query($first: Int!, $after: String) {
  projects(first: $first, after: $after) {
    edges { cursor node { id name } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

GET_PROJECT = """
query($id: ID!) {
  project(id: $id) {
    __typename
    ... on Project { id name state pipelines { edges { node { name path source stages { name command } } } } }
    ... on NotFoundError { message resource identifier }
  }
}
"""

DELETE_PROJECT = """
mutation($id: ID!) {
  deleteProject(id: $id) { __typename ... on ProjectDeleted { id name } ... on Error { message } }
}
"""

MakeProject = Callable[..., Awaitable[dict[str, Any]]]


def test_the_api_process_never_imports_dvc() -> None:
    probe = "import sys, app.main; print(sorted(m for m in sys.modules if m == 'dvc' or m.startswith('dvc.')))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


async def test_create_empty_project_makes_a_git_and_dvc_workspace(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    project = await make_project(name="churn-model")

    assert project["name"] == "churn-model"
    assert project["state"] == "READY"
    root = workspace_of(stack, project["id"])
    assert (root / ".git").is_dir()
    assert (root / ".dvc" / "config").is_file()
    assert "analytics = false" in (root / ".dvc" / "config").read_text().lower()


async def test_projects_are_listed_page_by_page(gql: GraphQLClient, make_project: MakeProject) -> None:
    created = [await make_project(name=f"page-{i}") for i in range(3)]

    first = (await gql.execute(LIST_PROJECTS, {"first": 2}))["projects"]
    second = (await gql.execute(LIST_PROJECTS, {"first": 2, "after": first["pageInfo"]["endCursor"]}))["projects"]

    names = [e["node"]["name"] for e in first["edges"] + second["edges"]]
    assert names == [p["name"] for p in created]
    assert first["pageInfo"]["hasNextPage"] is True
    assert second["pageInfo"]["hasNextPage"] is False


async def test_duplicate_project_name_is_a_conflict_and_stores_nothing(
    gql: GraphQLClient, make_project: MakeProject, mongo: Any
) -> None:
    await make_project(name="twice")
    before = mongo.projects.count_documents({})

    result = (await gql.execute(CREATE_PROJECT, {"input": {"name": "twice"}}))["createProject"]

    assert result["__typename"] == "ConflictError"
    assert "twice" in result["message"]
    assert mongo.projects.count_documents({}) == before


async def test_invalid_project_names_are_refused_with_the_field_path(gql: GraphQLClient, mongo: Any) -> None:
    before = mongo.projects.count_documents({})
    for bad in ["", "../escape", "a/b", "-rf", "x" * 65, "name."]:
        result = (await gql.execute(CREATE_PROJECT, {"input": {"name": bad}}))["createProject"]
        assert result["__typename"] == "ValidationError", bad
        assert result["issues"][0]["path"] == "name"
    assert mongo.projects.count_documents({}) == before


async def test_unknown_and_malformed_project_ids_are_not_found(gql: GraphQLClient) -> None:
    for unknown in ["65f000000000000000000000", "not-an-id"]:
        result = (await gql.execute(GET_PROJECT, {"id": unknown}))["project"]
        assert result == {
            "__typename": "NotFoundError",
            "message": result["message"],
            "resource": "project",
            "identifier": unknown,
        }


async def test_another_users_project_is_not_found(
    gql: GraphQLClient, make_project: MakeProject, make_user: MakeUser
) -> None:
    project = await make_project()
    somebody_else = await make_user()

    seen_by_other = (await somebody_else.execute(GET_PROJECT, {"id": project["id"]}))["project"]

    assert seen_by_other["__typename"] == "NotFoundError"


async def test_clone_discovers_the_repositorys_pipelines(
    gql: GraphQLClient, make_project: MakeProject, tmp_path: Path
) -> None:
    source = tmp_path / "upstream"
    source.mkdir()
    (source / "dvc.yaml").write_text("stages:\n  hello:\n    cmd: echo hello > hello.txt\n    outs:\n    - hello.txt\n")
    for command in (
        ["git", "init", "-q"],
        ["git", "add", "dvc.yaml"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "pipeline"],
    ):
        subprocess.run(command, cwd=source, check=True)

    project = await make_project(repository_url=str(source))

    result = (await gql.execute(GET_PROJECT, {"id": project["id"]}))["project"]
    pipelines = [e["node"] for e in result["pipelines"]["edges"]]
    assert pipelines == [
        {
            "name": "root",
            "path": "dvc.yaml",
            "source": "REPOSITORY",
            "stages": [{"name": "hello", "command": "echo hello > hello.txt"}],
        }
    ]


async def test_a_failed_clone_answers_a_workspace_error_and_stores_nothing(
    gql: GraphQLClient, mongo: Any, stack: Stack, tmp_path: Path
) -> None:
    before = mongo.projects.count_documents({})
    workspaces_before = sorted(p.name for p in Path(stack.env["WORKSPACE_ROOT"]).iterdir())

    result = (
        await gql.execute(
            CREATE_PROJECT, {"input": {"name": "no-such-repo", "repositoryUrl": str(tmp_path / "missing")}}
        )
    )["createProject"]

    assert result["__typename"] == "WorkspaceError", result
    assert mongo.projects.count_documents({}) == before
    assert sorted(p.name for p in Path(stack.env["WORKSPACE_ROOT"]).iterdir()) == workspaces_before


async def test_repository_urls_that_git_could_read_as_options_are_refused(gql: GraphQLClient) -> None:
    result = (
        await gql.execute(CREATE_PROJECT, {"input": {"name": "opt", "repositoryUrl": "--upload-pack=touch /tmp/x"}})
    )["createProject"]
    assert result["__typename"] == "ValidationError"
    assert result["issues"][0]["path"] == "repositoryUrl"


async def test_delete_project_removes_document_and_workspace(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    project = await make_project()
    root = workspace_of(stack, project["id"])
    assert root.is_dir()

    deleted = (await gql.execute(DELETE_PROJECT, {"id": project["id"]}))["deleteProject"]

    assert deleted == {"__typename": "ProjectDeleted", "id": project["id"], "name": project["name"]}
    assert not root.exists()
    again = (await gql.execute(GET_PROJECT, {"id": project["id"]}))["project"]
    assert again["__typename"] == "NotFoundError"
