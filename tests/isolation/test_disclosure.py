"""What the service tells about itself: /health without a token says only ok or not; no server paths in errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from bson import ObjectId

from tests.api.pipeline_fixtures import create_pipeline
from tests.api.run_helpers import execute, finished
from tests.conftest import GraphQLClient
from tests.stack import Stack
from workers.runs.recorder import without_server_paths

MakeProject = Callable[..., Awaitable[dict[str, Any]]]


async def test_health_without_a_token_says_only_ok(http: httpx.AsyncClient, gql: GraphQLClient) -> None:
    anonymous = await http.get("/health")
    wrong = await http.get("/health", headers={"authorization": "Bearer dvcs_not-a-token"})
    detailed = await http.get("/health", headers=gql.headers)

    assert anonymous.status_code == 200 and anonymous.json() == {"status": "ok"}
    assert wrong.status_code == 200 and wrong.json() == {"status": "ok"}
    assert detailed.status_code == 200
    body = detailed.json()
    assert body["status"] == "ok"
    assert {"mongodb", "redis", "worker"} <= body.keys() and body["mongodb"]["ok"] is True


async def test_stage_errors_do_not_show_the_servers_paths(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, mongo: Any
) -> None:
    project = await make_project()
    stages = [
        {"name": "noout", "command": "true", "outs": ["never-written.txt"]},
        {"name": "crash", "command": "exit 3", "outs": ["c.txt"]},
    ]
    written = await create_pipeline(gql, project["id"], stages=stages)
    assert written["__typename"] == "PipelineWritten", written

    run = await finished(gql, await execute(gql, written["pipeline"]["id"], keepGoing=True))

    errors = [s["error"] for s in run["stages"] if s["error"]] + ([run["error"]] if run.get("error") else [])
    assert errors, run
    stored = mongo.runs.find_one({"_id": ObjectId(run["id"])})
    root = stack.env["WORKSPACE_ROOT"]
    for text in [*errors, str(stored)]:
        assert root not in text, text


def test_the_workspace_root_is_shown_relative() -> None:
    message = "[Errno 2] No such file: '/srv/ws/p1/data/x.csv' (next to '/srv/ws/p2')"
    assert without_server_paths(message, server_root="/srv/ws/", project_id="p1") == (
        "[Errno 2] No such file: './data/x.csv' (next to '../p2')"
    )
    assert without_server_paths(None, server_root="/srv/ws", project_id="p1") is None
