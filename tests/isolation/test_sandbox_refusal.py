"""A worker that cannot build the stage sandbox refuses to start stage commands, and /health says so, unless the
operator set STAGES_UNSANDBOXED=true.

The machine "cannot create namespaces" for real: the worker runs as root without CAP_SYS_ADMIN (setpriv drops it from
its bounding set), so bubblewrap's unshare fails exactly as on a host that forbids it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.pipeline_fixtures import create_pipeline
from tests.api.run_helpers import execute, finished
from tests.conftest import CREATE_PROJECT, GraphQLClient, create_user_with_cli, workspace_of
from tests.stack import Process, Stack, free_port, session_env, spawn, start_api
from tests.waiting import eventually

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")

WITHOUT_NAMESPACES = ["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", "--"]
DEADLINE_SECONDS = 60.0


def start_worker_without_namespaces(env: dict[str, str], log_dir: Path, name: str) -> Process:
    return spawn(name, [*WITHOUT_NAMESPACES, sys.executable, "-m", "workers"], env, log_dir)


@contextmanager
def stack_without_namespaces(tmp_path: Path, **overrides: str) -> Iterator[Stack]:
    env = session_env(tmp_path / "workspaces", **overrides)
    port = free_port()
    worker = start_worker_without_namespaces(env, tmp_path, "worker")
    api = start_api(env, tmp_path, port)
    try:
        yield Stack(base_url=f"http://127.0.0.1:{port}", env=env, api=api, worker=worker, log_dir=tmp_path)
    finally:
        api.stop()
        worker.stop()


async def sandbox_reported(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    """The authenticated /health once a worker has reported its sandbox (the API may still be starting)."""

    async def reported() -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = (await http.get("/health", headers={"authorization": f"Bearer {token}"})).json()
        except (httpx.HTTPError, ValueError):
            return None
        return body if "sandbox" in body and "no worker has reported" not in str(body["sandbox"]) else None

    return await eventually(reported, seconds=DEADLINE_SECONDS, what="a worker reporting its sandbox")


async def run_one_stage(gql: GraphQLClient, stack: Stack) -> tuple[dict[str, Any], Path]:
    data = await gql.execute(CREATE_PROJECT, {"input": {"name": "refused"}})
    project_id = data["createProject"]["project"]["id"]
    written = await create_pipeline(gql, project_id, stages=[{"name": "s", "command": "touch o", "outs": ["o"]}])
    assert written["__typename"] == "PipelineWritten", written
    run = await finished(gql, await execute(gql, written["pipeline"]["id"]), seconds=DEADLINE_SECONDS)
    return run, workspace_of(stack, project_id)


async def test_a_worker_that_cannot_sandbox_refuses_stage_commands_and_health_says_so(tmp_path: Path) -> None:
    with stack_without_namespaces(tmp_path) as stack:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
            token = await asyncio.to_thread(create_user_with_cli, stack, "operator")
            gql = GraphQLClient(http, token, "operator")
            health = await sandbox_reported(http, token)
            anonymous = await http.get("/health")

            run, workspace = await run_one_stage(gql, stack)

    assert health["status"] == "degraded" and health["sandbox"]["ok"] is False, health
    assert "cannot build their sandbox" in health["sandbox"]["error"], health
    assert anonymous.status_code == 503 and anonymous.json() == {"status": "degraded"}
    assert run["state"] == "FAILED", run
    assert "cannot build their sandbox" in run["error"] and "STAGES_UNSANDBOXED=true" in run["error"], run
    assert not (workspace / "o").exists(), "the stage's command ran"


async def test_the_operator_may_run_stages_unsandboxed_and_health_shows_it(tmp_path: Path) -> None:
    with stack_without_namespaces(tmp_path, STAGES_UNSANDBOXED="true") as stack:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
            token = await asyncio.to_thread(create_user_with_cli, stack, "operator")
            health = await sandbox_reported(http, token)

            run, workspace = await run_one_stage(GraphQLClient(http, token, "operator"), stack)

    assert health["status"] == "ok" and health["sandbox"]["ok"] is True, health
    (worker,) = health["sandbox"]["workers"].values()
    assert worker["mode"] == "unsandboxed" and worker["available"] is False, worker
    assert run["state"] == "SUCCEEDED", run
    assert (workspace / "o").exists()
