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


class Reports:
    """Each shape's report, computed the first time a test asks for it and shared by its other checks.

    Each shape (and each random example) is exercised by a user of its own, as a team would: the service limits the
    requests that start work per user, and the whole corpus makes far more of them in a minute than one user may.
    """

    def __init__(
        self, http: httpx.AsyncClient, auth: AuthService, oracle: Oracle, workspaces: Path, scratch: Path
    ) -> None:
        self.http, self.auth, self.oracle, self.workspaces, self.scratch = http, auth, oracle, workspaces, scratch
        self._done: dict[str, Report] = {}

    async def new_user(self) -> GraphQLClient:
        user = await self.auth.create_user(f"conformance-{uuid.uuid4().hex[:8]}")
        _, secret = await self.auth.create_token(user_id=user.id, name="conformance", expires_in_days=None)
        return GraphQLClient(self.http, secret, user.name)

    async def of(self, shape: str) -> Report:
        if shape not in self._done:
            # Kept before it is filled: a test timing out mid-exercise leaves the checks it never reached marked so.
            self._done[shape] = report = Report(shape)
            folder = self.scratch / shape
            folder.mkdir()
            gql = await self.new_user()
            await exercise(SHAPES_BY_NAME[shape](), report, gql, self.oracle, self.workspaces, folder)
        return self._done[shape]


@pytest.fixture(scope="session")
def reports(
    http: httpx.AsyncClient,
    auth: AuthService,
    oracle: Oracle,
    stack: Stack,
    tmp_path_factory: pytest.TempPathFactory,
) -> Reports:
    return Reports(http, auth, oracle, Path(stack.env["WORKSPACE_ROOT"]), tmp_path_factory.mktemp("shapes"))
