"""Fixtures: one real stack (API + worker on FerretDB/MongoDB and Redis) per test session."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from app.db import create_client
from app.repositories.users import UserRepository
from app.services.auth import AuthService
from tests.reliability import ReliabilityLog
from tests.stack import ROOT, Stack, running_stack

RELIABILITY = ReliabilityLog()


@pytest.fixture
def reliability(request: pytest.FixtureRequest) -> ReliabilityLog:
    RELIABILITY.current_test = request.node.nodeid
    return RELIABILITY


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # A test's rows count only when all of it passed: set-up, call and tear-down.
    if report.failed:
        RELIABILITY.failed.add(report.nodeid)
        RELIABILITY.passed.discard(report.nodeid)
    elif report.when == "call" and report.passed and report.nodeid not in RELIABILITY.failed:
        RELIABILITY.passed.add(report.nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # A failing test shows the end of the logs of the stacks it used: in CI the services' logs go with the machine.
    report: pytest.TestReport = yield
    if report.failed:
        stacks = {id(v): v for v in getattr(item, "funcargs", {}).values() if isinstance(v, Stack)}
        for stack in stacks.values():
            for process in (stack.worker, stack.api):
                report.sections.append((f"{process.name} log ({process.log})", process.log_tail(60)))
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Only a whole, unfiltered run speaks for the whole system.
    config = session.config
    unfiltered = not config.getoption("keyword") and not config.getoption("markexpr") and config.args == ["tests"]
    if unfiltered and RELIABILITY.observations:
        RELIABILITY.write()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("stack")
    with running_stack(base / "workspaces", base) as started:
        yield started
        assert_every_run_final(started)


# Every run reaches a final state: whatever the tests did to them, none may still be QUEUED or RUNNING once the
# stack has had this long to settle them (cancel, timeout, the reaper's own delay included).
SETTLE_DEADLINE_SECONDS = 60.0


def assert_every_run_final(stack: Stack) -> None:
    """Fails the session (at the stack's teardown) when a run of its database never reached a final state."""
    client: MongoClient[dict[str, Any]] = MongoClient(stack.env["MONGODB_URL"])
    try:
        runs = client[stack.env["MONGODB_DATABASE"]].runs
        unfinished: list[dict[str, Any]] = []
        deadline = time.monotonic() + SETTLE_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            unfinished = runs.find(
                {"state": {"$in": ["queued", "running"]}}, {"pipeline_name": 1, "state": 1, "created_at": 1}
            ).to_list()
            if not unfinished:
                return
            time.sleep(0.5)  # polling interval of a deadline-bounded wait
        raise AssertionError(f"runs left unfinished by the test session: {unfinished}")
    finally:
        client.close()


class GraphQLClient:
    """Posts GraphQL to the running API as one user; ``execute`` fails the test on any top-level error."""

    def __init__(self, http: httpx.AsyncClient, token: str, name: str) -> None:
        self.http = http
        self.token = token
        self.name = name

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    async def post(self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=self.headers, **kwargs
        )

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.post(query, variables)
        assert response.status_code == 200, response.text
        body = response.json()
        assert not body.get("errors"), body["errors"]
        data: dict[str, Any] = body["data"]
        return data


@pytest.fixture(scope="session")
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="session")
async def auth(stack: Stack) -> AsyncIterator[AuthService]:
    """The service's own token machinery, straight on the test database (as `python -m app` uses it)."""
    client = create_client(stack.env["MONGODB_URL"])
    yield AuthService(users=UserRepository(client[stack.env["MONGODB_DATABASE"]]))
    await client.close()


MakeUser = Callable[[], Awaitable[GraphQLClient]]


def create_user_with_cli(stack: Stack, name: str) -> str:
    """The administrator's way in: `python -m app create-user` prints the first token."""
    result = subprocess.run(
        [sys.executable, "-m", "app", "create-user", name],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


@pytest.fixture
def make_user(http: httpx.AsyncClient, auth: AuthService) -> MakeUser:
    async def make() -> GraphQLClient:
        user = await auth.create_user(f"user-{uuid.uuid4().hex[:10]}")
        _, secret = await auth.create_token(user_id=user.id, name="tests", expires_in_days=None)
        return GraphQLClient(http, secret, user.name)

    return make


@pytest.fixture
async def gql(make_user: MakeUser) -> GraphQLClient:
    # A user per test keeps tests independent: nobody sees another test's projects.
    return await make_user()


@pytest.fixture(scope="session")
def mongo(stack: Stack) -> Iterator[Any]:
    client: MongoClient[dict[str, Any]] = MongoClient(stack.env["MONGODB_URL"])
    yield client[stack.env["MONGODB_DATABASE"]]
    client.close()


CREATE_PROJECT = """
mutation($input: CreateProjectInput!) {
  createProject(input: $input) {
    __typename
    ... on ProjectCreated { project { id name state repositoryUrl } }
    ... on Error { message }
    ... on ValidationError { issues { path message } }
  }
}
"""


@pytest.fixture
def make_project(gql: GraphQLClient) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def make(name: str | None = None, repository_url: str | None = None) -> dict[str, Any]:
        data = await gql.execute(
            CREATE_PROJECT,
            {"input": {"name": name or f"p-{uuid.uuid4().hex[:8]}", "repositoryUrl": repository_url}},
        )
        result = data["createProject"]
        assert result["__typename"] == "ProjectCreated", result
        project: dict[str, Any] = result["project"]
        return project

    return make


def workspace_of(stack: Stack, project_id: str) -> Path:
    return Path(stack.env["WORKSPACE_ROOT"]) / project_id


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (but DVC's scratch space) with a hash of its content: equal means unchanged."""
    digest: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith((".dvc/tmp", ".git/")) or relative == ".git":
            continue
        if path.is_symlink():
            digest[relative] = f"link:{path.readlink()}"
        elif path.is_file():
            digest[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            digest[relative] = "dir"
    return digest
