"""Stacks and clients for the tests of runs reaching a final state, and a guard that none of them leaves one RUNNING."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.api.run_helpers import CANCEL, FINISHED
from tests.conftest import CREATE_PROJECT, GraphQLClient, create_user_with_cli
from tests.stack import Stack, running_stack

UNFINISHED_RUNS = """
query { runs(first: 100) { ... on RunConnection { edges { node { id state } } } } }
"""


class Users:
    """Users made on one stack; when the test ends, every run they started is checked to be finished (one still
    QUEUED or RUNNING is cancelled, which must end it at once, and the test fails)."""

    def __init__(self, stack: Stack, http: httpx.AsyncClient) -> None:
        self.stack = stack
        self.http = http
        self.made: list[GraphQLClient] = []

    def make(self) -> GraphQLClient:
        name = f"u-{uuid.uuid4().hex[:10]}"
        client = GraphQLClient(self.http, create_user_with_cli(self.stack, name), name)
        self.made.append(client)
        return client

    async def unfinished_runs(self) -> list[str]:
        left = []
        for user in self.made:
            runs = (await user.execute(UNFINISHED_RUNS))["runs"]["edges"]
            for edge in runs:
                if edge["node"]["state"] not in FINISHED:
                    left.append(edge["node"]["id"])
                    await user.execute(CANCEL, {"id": edge["node"]["id"]})
        return left


@pytest.fixture
async def users_of(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """``users_of(stack)``: a ``Users`` on that stack, checked when the test ends."""
    made: list[Users] = []
    clients: list[httpx.AsyncClient] = []

    def make(stack: Stack) -> Users:
        http = httpx.AsyncClient(base_url=stack.base_url, timeout=60)
        clients.append(http)
        users = Users(stack, http)
        made.append(users)
        return users

    yield make
    try:
        left = [run for users in made for run in await users.unfinished_runs()]
        assert not left, f"the test left runs unfinished (now cancelled): {left}"
    finally:
        for http in clients:
            await http.aclose()


async def new_project(user: GraphQLClient, name: str = "p") -> str:
    created = await user.execute(CREATE_PROJECT, {"input": {"name": f"{name}-{uuid.uuid4().hex[:6]}"}})
    assert created["createProject"]["__typename"] == "ProjectCreated", created
    project_id: str = created["createProject"]["project"]["id"]
    return project_id


@pytest.fixture(scope="module")
def private_stack_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``start(**settings)``: a stack of its own for this module (its worker may be killed or given faults)."""
    stacks: list[tuple[Any, Stack]] = []

    def start(**settings: str) -> Stack:
        base = tmp_path_factory.mktemp("private-stack")
        context = running_stack(base / "workspaces", base, **settings)
        stack: Stack = context.__enter__()
        stacks.append((context, stack))
        return stack

    yield start
    for context, stack in reversed(stacks):
        stack.worker.stop()  # a test may have replaced the worker the stack started with
        context.__exit__(None, None, None)


def dvc_cli(root: Path, *args: str) -> str:
    """The DVC CLI, the oracle of what a run must leave behind."""
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def oracle_copy(root: Path, target: Path) -> Path:
    shutil.copytree(root, target, symlinks=True)
    return target


def lock_files(root: Path) -> dict[str, Any]:
    """Every dvc.lock of the workspace, parsed, by path."""
    return {
        path.relative_to(root).as_posix(): yaml.safe_load(path.read_text())
        for path in sorted(root.rglob("dvc.lock"))
        if ".dvc" not in path.relative_to(root).parts
    }
