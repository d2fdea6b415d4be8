"""A hostile stage and hostile paths: file operations never leave the workspace and never crash.

The stage of issue 13 swapped a folder between a real folder and a symbolic link to a folder outside while writes
went on; the API checked the path, then opened it later, and wrote outside. Here a thread plays that stage (it runs
on the same machine, with the workspace's rights) against many concurrent writes and uploads.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.api.pipeline_fixtures import WRITE_FILE, write_file
from tests.api.test_files import LIST_AND_READ, upload
from tests.conftest import GraphQLClient, workspace_of
from tests.stack import Stack

MakeProject = Callable[..., Awaitable[dict[str, Any]]]
TYPED_REFUSALS = {"ValidationError", "NotFoundError"}


_libc = ctypes.CDLL(None, use_errno=True)
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(first: Path, second: Path) -> None:
    """Swap two names atomically (renameat2 RENAME_EXCHANGE), as an attacker would: the name never goes missing."""
    if _libc.renameat2(_AT_FDCWD, bytes(first), _AT_FDCWD, bytes(second), _RENAME_EXCHANGE) != 0:
        raise OSError(ctypes.get_errno(), "renameat2")


def _flip_until(stop: threading.Event, folder: Path, outside: Path, flips: list[int]) -> None:
    """Swap ``folder`` between a real folder and a link to ``outside`` as fast as the file system allows."""
    other = folder.with_name(folder.name + ".other")
    other.symlink_to(outside)
    while not stop.is_set():
        _exchange(folder, other)
        flips[0] += 1


async def test_a_folder_swapped_for_a_symbolic_link_never_lets_a_write_out(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, tmp_path: Path
) -> None:
    project = await make_project()
    root = workspace_of(stack, project["id"])
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "swap").mkdir()
    stop, flips = threading.Event(), [0]
    flipper = threading.Thread(target=_flip_until, args=(stop, root / "swap", outside, flips), daemon=True)
    flipper.start()
    outcomes: list[str] = []
    semaphore = asyncio.Semaphore(8)

    async def attempt(index: int) -> None:
        async with semaphore:
            if index % 4 == 3:
                body = await upload(gql, project["id"], f"swap/up-{index}.bin", b"u" * 64)
                assert not body.get("errors"), body
                result = body["data"]["uploadFile"]
            else:
                path = f"swap/deeper/w-{index}.txt" if index % 2 else f"swap/w-{index}.txt"
                response = await gql.post(
                    WRITE_FILE, {"input": {"projectId": project["id"], "path": path, "content": "w"}}
                )
                assert response.status_code == 200, response.text
                body = response.json()
                assert not body.get("errors"), body  # INTERNAL_SERVER_ERROR would show here
                result = body["data"]["writeFile"]
            outcomes.append(result["__typename"])

    try:
        await asyncio.gather(*(attempt(i) for i in range(240)))
    finally:
        stop.set()
        flipper.join(10)

    assert flips[0] > 100, f"the swap ran only {flips[0]} times: the race was not exercised"
    assert sorted(p.name for p in outside.rglob("*")) == [], "a write landed outside the workspace"
    assert set(outcomes) <= {"FileWritten"} | TYPED_REFUSALS, outcomes
    assert "FileWritten" in outcomes and set(outcomes) & TYPED_REFUSALS, (
        f"both outcomes expected while the folder flips: {sorted(set(outcomes))}"
    )


async def test_reads_and_listings_do_not_follow_symbolic_links(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, tmp_path: Path
) -> None:
    project = await make_project()
    root = workspace_of(stack, project["id"])
    (tmp_path / "secret.txt").write_text("not yours")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    (root / "linked").symlink_to(tmp_path)

    read_file = (await gql.execute(LIST_AND_READ, {"id": project["id"], "folder": "linked", "file": "link.txt"}))[
        "project"
    ]
    through_folder = (
        await gql.execute(LIST_AND_READ, {"id": project["id"], "folder": ".", "file": "linked/secret.txt"})
    )["project"]

    assert read_file["file"]["__typename"] == "ValidationError", read_file
    assert read_file["files"]["__typename"] == "ValidationError", read_file
    assert through_folder["file"]["__typename"] == "ValidationError", through_folder
    assert "not yours" not in str(read_file) + str(through_folder)
    listed = {e["name"]: e["kind"] for e in through_folder["files"]["entries"]}
    assert listed["link.txt"] == "SYMLINK" and listed["linked"] == "SYMLINK"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/".join(["d"] * 2000) + "/x.txt", "longer than 1024 bytes"),
        ("/".join(["d"] * 33) + "/x.txt", "deeper than"),
        ("x" * 5000 + ".txt", "longer than"),
        ("a/" + "n" * 256, "longer than 255 bytes"),
        ("é" * 128 + ".txt", "longer than 255 bytes"),
        ("bad\0name.txt", "control"),
        ("bad\nname.txt", "control"),
        ("bad\x1bname.txt", "control"),
    ],
)
async def test_hostile_paths_are_validation_errors(
    path: str, expected: str, gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    project = await make_project()
    root = workspace_of(stack, project["id"])
    before = sorted(p.as_posix() for p in root.rglob("*") if ".git" not in p.parts)

    response = await gql.post(WRITE_FILE, {"input": {"projectId": project["id"], "path": path, "content": "x"}})
    read = await gql.post(LIST_AND_READ, {"id": project["id"], "folder": path, "file": path})

    for answer in (response, read):
        assert answer.status_code == 200, answer.text
        assert not answer.json().get("errors"), answer.json()
    written = response.json()["data"]["writeFile"]
    assert written["__typename"] == "ValidationError", written
    assert expected in written["message"], written
    assert read.json()["data"]["project"]["file"]["__typename"] == "ValidationError"
    assert read.json()["data"]["project"]["files"]["__typename"] == "ValidationError"
    body = await upload(gql, project["id"], path, b"x")
    assert body["data"]["uploadFile"]["__typename"] == "ValidationError", body
    assert sorted(p.as_posix() for p in root.rglob("*") if ".git" not in p.parts) == before


async def test_paths_at_the_limits_are_accepted(gql: GraphQLClient, make_project: MakeProject, stack: Stack) -> None:
    project = await make_project()
    deep = "/".join(["d"] * 31) + "/x.txt"  # 32 components
    long_name = "n" * 251 + ".txt"  # 255 bytes
    for path in (deep, long_name):
        await write_file(gql, project["id"], path, f"at the limit {uuid.uuid4().hex}")
        assert (workspace_of(stack, project["id"]) / path).is_file()
