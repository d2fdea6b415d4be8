"""`repositoryUrl`: only allowed remote schemes and operator-listed local folders; credentials never kept in clear.

Issue 13: `createProject(repositoryUrl: "<WORKSPACE_ROOT>/<B's project id>")` cloned user B's workspace, and the
service's own checkout could be cloned the same way. The test stack allows local clones under the temp folder only
(ALLOWED_LOCAL_REPOSITORY_ROOTS in tests/stack.py), where the tests build their repositories.
"""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.domain.names import redact_repository_url
from tests.conftest import CREATE_PROJECT, GraphQLClient, create_user_with_cli, workspace_of
from tests.stack import ROOT, Stack, running_stack

MakeProject = Callable[..., Awaitable[dict[str, Any]]]


def _git_repository(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "README.md").write_text("hello\n")
    for command in (
        ["git", "init", "-q"],
        ["git", "add", "README.md"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "first"],
    ):
        subprocess.run(command, cwd=folder, check=True)
    return folder


async def _create(gql: GraphQLClient, url: str, name: str = "cloned") -> dict[str, Any]:
    result: dict[str, Any] = (await gql.execute(CREATE_PROJECT, {"input": {"name": name, "repositoryUrl": url}}))[
        "createProject"
    ]
    return result


async def test_another_users_workspace_cannot_be_cloned(
    gql: GraphQLClient, make_user: Callable[[], Awaitable[GraphQLClient]], stack: Stack, mongo: Any
) -> None:
    victim = await make_user()
    secret_project = (await victim.execute(CREATE_PROJECT, {"input": {"name": "secret"}}))["createProject"]["project"]
    victim_root = workspace_of(stack, secret_project["id"])
    before = mongo.projects.count_documents({})

    for url in (
        str(victim_root),
        f"file://{victim_root}",
        str(victim_root.parent),
        f"{victim_root}/../{victim_root.name}",
    ):
        result = await _create(gql, url)
        assert result["__typename"] == "ValidationError", (url, result)
        assert result["issues"][0]["path"] == "repositoryUrl"
    assert mongo.projects.count_documents({}) == before


async def test_the_services_own_files_cannot_be_cloned(gql: GraphQLClient, mongo: Any) -> None:
    before = mongo.projects.count_documents({})
    for url in (str(ROOT), f"file://{ROOT}", str(ROOT / "app"), "/etc", "/root"):
        result = await _create(gql, url)
        assert result["__typename"] == "ValidationError", (url, result)
    assert mongo.projects.count_documents({}) == before


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/repo.git",
        "git://example.com/repo.git",
        "ssh://git@example.com/repo.git",
        "git@example.com:team/repo.git",
        "ext::sh -c touch% /tmp/pwned",
        "fd::3",
        "https:///no-host",
        "relative/path",
    ],
)
async def test_only_https_remotes_by_default(url: str, gql: GraphQLClient, mongo: Any) -> None:
    before = mongo.projects.count_documents({})
    result = await _create(gql, url)
    assert result["__typename"] == "ValidationError", result
    assert mongo.projects.count_documents({}) == before


async def test_a_local_repository_under_an_allowed_root_clones(
    gql: GraphQLClient, make_project: MakeProject, tmp_path: Path
) -> None:
    source = _git_repository(tmp_path / "upstream")
    project = await make_project(repository_url=str(source))
    assert project["state"] and project["repositoryUrl"] == str(source)


def test_credentials_are_redacted() -> None:
    assert redact_repository_url("https://me:s3cret@host/r.git") == "https://me:***@host/r.git"
    assert redact_repository_url("https://ghp_token@host/r.git") == "https://***@host/r.git"
    assert redact_repository_url("ssh://git@host/r.git") == "ssh://git@host/r.git"
    assert redact_repository_url("https://host/r.git") == "https://host/r.git"


@pytest.fixture(scope="module")
def http_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack that also allows http:// remotes, so a local dumb-HTTP git server can stand in for a forge."""
    base = tmp_path_factory.mktemp("repo-stack")
    with running_stack(base / "workspaces", base, REPOSITORY_URL_SCHEMES="https,http") as stack:
        yield stack


@pytest.fixture
def git_http_server(tmp_path: Path) -> Iterator[str]:
    """A bare repository served over git's dumb HTTP protocol; the URL of its folder."""
    source = _git_repository(tmp_path / "source")
    served = tmp_path / "served"
    served.mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(served / "repo.git")], check=True)
    subprocess.run(["git", "update-server-info"], cwd=served / "repo.git", check=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


async def test_credentials_in_a_url_are_never_stored_or_shown(
    http_stack: Stack, git_http_server: str, mongo: Any
) -> None:
    async with httpx.AsyncClient(base_url=http_stack.base_url, timeout=60) as http:
        user = GraphQLClient(http, create_user_with_cli(http_stack, "cred-user"), "cred-user")
        url = f"http://me:s3cret-pass@{git_http_server}/repo.git"
        result = await _create(user, url)
        assert result["__typename"] == "ProjectCreated", result
        project = result["project"]
        failed = await _create(user, f"http://me:s3cret-pass@{git_http_server}/missing.git", "failed")
        projects = await user.execute("query { projects { edges { node { repositoryUrl } } } }")

    assert project["repositoryUrl"] == f"http://me:***@{git_http_server}/repo.git"
    assert failed["__typename"] == "WorkspaceError", failed
    database = mongo.client[http_stack.env["MONGODB_DATABASE"]]
    stored = database.projects.find_one({"name": "cloned"})
    git_config = (workspace_of(http_stack, project["id"]) / ".git" / "config").read_text()
    for text in (str(project), str(failed), str(projects), str(stored), git_config):
        assert "s3cret-pass" not in text, text
    assert http_stack.env["WORKSPACE_ROOT"] not in failed["message"], failed
