"""Fixtures: one real stack (API + worker on FerretDB/MongoDB and Redis) per test session."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from tests.stack import Stack, running_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("stack")
    with running_stack(base / "workspaces", base) as started:
        yield started


class GraphQLClient:
    """Posts GraphQL to the running API; ``execute`` fails the test on any top-level error."""

    def __init__(self, http: httpx.AsyncClient, user: str) -> None:
        self.http = http
        self.user = user

    async def post(self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers={"x-user": self.user}, **kwargs
        )

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.post(query, variables)
        assert response.status_code == 200, response.text
        body = response.json()
        assert not body.get("errors"), body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    def as_user(self, user: str) -> GraphQLClient:
        return GraphQLClient(self.http, user)


@pytest.fixture(scope="session")
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as client:
        yield client


@pytest.fixture
def gql(http: httpx.AsyncClient) -> GraphQLClient:
    # A user per test keeps tests independent: nobody sees another test's projects.
    return GraphQLClient(http, f"user-{uuid.uuid4().hex[:8]}")


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
