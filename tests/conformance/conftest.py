"""Fixtures of the conformance suite: one DVC oracle process, one user, and each shape exercised once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.services.auth import AuthService
from tests.conformance.oracle import Oracle
from tests.conformance.scenario import Report, exercise
from tests.conformance.shapes import SHAPES
from tests.conftest import GraphQLClient
from tests.stack import Stack

SHAPES_BY_NAME = {make().name: make for make in SHAPES}


@pytest.fixture(scope="session")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Oracle]:
    started = Oracle(tmp_path_factory.mktemp("oracle") / "oracle.log")
    yield started
    started.close()


@pytest.fixture(scope="session")
async def conformance_gql(http: httpx.AsyncClient, auth: AuthService) -> GraphQLClient:
    user = await auth.create_user(f"conformance-{uuid.uuid4().hex[:8]}")
    _, secret = await auth.create_token(user_id=user.id, name="conformance", expires_in_days=None)
    return GraphQLClient(http, secret, user.name)


class Reports:
    """Each shape's report, computed the first time a test asks for it and shared by its other checks."""

    def __init__(self, gql: GraphQLClient, oracle: Oracle, workspaces: Path, scratch: Path) -> None:
        self.gql, self.oracle, self.workspaces, self.scratch = gql, oracle, workspaces, scratch
        self._done: dict[str, Report] = {}

    async def of(self, shape: str) -> Report:
        if shape not in self._done:
            # Kept before it is filled: a test timing out mid-exercise leaves the checks it never reached marked so.
            self._done[shape] = report = Report(shape)
            folder = self.scratch / shape
            folder.mkdir()
            await exercise(SHAPES_BY_NAME[shape](), report, self.gql, self.oracle, self.workspaces, folder)
        return self._done[shape]


@pytest.fixture(scope="session")
def reports(
    conformance_gql: GraphQLClient, oracle: Oracle, stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Reports:
    return Reports(conformance_gql, oracle, Path(stack.env["WORKSPACE_ROOT"]), tmp_path_factory.mktemp("shapes"))
