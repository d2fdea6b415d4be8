"""MongoDB and Redis stopped and restarted under a running API and worker: clear errors, full recovery."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import websockets
from pymongo import MongoClient

from tests.api.pipeline_fixtures import create_pipeline
from tests.api.run_helpers import execute, finished, stage_states, wait_for_run
from tests.conftest import CREATE_PROJECT, GraphQLClient, create_user_with_cli, workspace_of
from tests.reliability import ReliabilityLog
from tests.services import start_ferretdb, start_redis
from tests.stack import Process, Stack, free_port, running_stack, start_worker

PROJECTS = "query { projects { edges { node { id name } } } }"
RUNS = "query { runs { ... on RunConnection { edges { node { id state } } } } }"
QUICK = [{"name": "quick", "command": "echo hi > hi.txt", "outs": ["hi.txt"]}]


@dataclass
class Services:
    mongo: Process
    redis: Process
    mongo_port: int
    redis_port: int
    base: Path

    def restart_mongo(self) -> None:
        self.mongo = start_ferretdb(self.base / "mongo", self.mongo_port, self.base)

    def restart_redis(self) -> None:
        self.redis = start_redis(self.base / "redis", self.redis_port, self.base)


@contextmanager
def private_stack(base: Path, **settings: str) -> Iterator[tuple[Stack, Services]]:
    mongo_port, redis_port = free_port(), free_port()
    services = Services(
        mongo=start_ferretdb(base / "mongo", mongo_port, base),
        redis=start_redis(base / "redis", redis_port, base),
        mongo_port=mongo_port,
        redis_port=redis_port,
        base=base,
    )
    try:
        urls = {"MONGODB_URL": f"mongodb://127.0.0.1:{mongo_port}/", "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
        with running_stack(base / "workspaces", base, **urls, **settings) as stack:
            yield stack, services
    finally:
        services.mongo.stop()
        services.redis.stop()


async def until(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"{what} not within {seconds}s"


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["errors"][0]
    return error


async def test_mongodb_stopped_and_restarted(tmp_path: Path, reliability: ReliabilityLog) -> None:
    with private_stack(tmp_path) as (stack, services):
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
            user = GraphQLClient(http, create_user_with_cli(stack, "mongo-outage"), "mongo-outage")
            project = (await user.execute(CREATE_PROJECT, {"input": {"name": "kept"}}))["createProject"]["project"]
            assert (await create_pipeline(user, project["id"], name="before", stages=QUICK))["__typename"] == (
                "PipelineWritten"
            )

            # A socket authenticated before the outage: its query reaches the resolver, which meets the outage itself
            # (an HTTP request is answered by the authentication middleware first, below).
            url = stack.base_url.replace("http://", "ws://") + "/graphql"
            async with websockets.connect(url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]) as ws:
                await ws.send(
                    json.dumps({"type": "connection_init", "payload": {"Authorization": user.headers["authorization"]}})
                )
                assert json.loads(await ws.recv())["type"] == "connection_ack"
                services.mongo.stop()
                await ws.send(json.dumps({"id": "q", "type": "subscribe", "payload": {"query": PROJECTS}}))
                resolved = json.loads(await asyncio.wait_for(ws.recv(), 60))
            during = await user.post(PROJECTS)
            write = await user.post(
                'mutation($p: ID!) { createPipeline(input: {projectId: $p, name: "during", stages: '
                '[{name: "s", command: "echo x > x.txt", outs: ["x.txt"]}]}) { __typename } }',
                {"p": project["id"]},
            )
            health = await http.get("/health")

            assert resolved["type"] == "next", resolved
            assert resolved["payload"]["data"] is None
            outage = resolved["payload"]["errors"][0]
            assert outage["path"] == ["projects"] and "MongoDB" in outage["message"], resolved
            assert during.status_code == 503 and "MongoDB" in error_of(during)["message"]
            assert error_of(during)["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            assert write.status_code == 503
            assert health.status_code == 503 and health.json() == {"status": "degraded"}

            services.restart_mongo()

            async def answers() -> bool:
                return (await user.post(PROJECTS)).status_code == 200

            await until(answers, 30, "recovery after MongoDB restart")
            names = [e["node"]["name"] for e in (await user.execute(PROJECTS))["projects"]["edges"]]
            pipelines = (
                await user.execute(
                    "query($p: ID!) { pipelines(projectId: $p) { "
                    "... on PipelineConnection { edges { node { name } } } } }",
                    {"p": project["id"]},
                )
            )["pipelines"]["edges"]
            assert names == ["kept"]
            assert [p["node"]["name"] for p in pipelines] == ["before"]
            assert not (workspace_of(stack, project["id"]) / "pipelines" / "during").exists()
            after = await create_pipeline(
                user, project["id"], name="after", stages=[QUICK[0] | {"command": "echo y > y.txt", "outs": ["y.txt"]}]
            )
            assert after["__typename"] == "PipelineWritten"

    reliability.record(
        "Faults",
        "MongoDB stopped and restarted",
        tried="FerretDB stopped while the API serves; a query and a createPipeline during the outage; "
        "FerretDB restarted",
        observed=f"during: a query over an authenticated WebSocket reaches its resolver and answers "
        f"{outage['message']!r} at {outage['path']}; HTTP {during.status_code} {error_of(during)['message']!r} "
        f"({error_of(during)['extensions']['code']}); createPipeline HTTP {write.status_code}; /health "
        f"{health.status_code} {health.json()}; after: same data ({names}), no half-written pipeline (no document, "
        "no dvc.yaml), new writes work",
    )


async def test_redis_stopped_and_restarted_empty(tmp_path: Path, reliability: ReliabilityLog) -> None:
    with private_stack(tmp_path, RUN_LOST_AFTER_SECONDS="3", RUN_HEARTBEAT_SECONDS="0.5") as (stack, services):
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
            user = GraphQLClient(http, create_user_with_cli(stack, "redis-outage"), "redis-outage")
            project = (await user.execute(CREATE_PROJECT, {"input": {"name": "queued"}}))["createProject"]["project"]
            long_stage = {"name": "long", "command": "sh -c 'echo $$ > pid.txt; sleep 60'", "outs": ["l.txt"]}
            long = await create_pipeline(user, project["id"], name="long", stages=[long_stage])
            quick = await create_pipeline(user, project["id"], name="quick", stages=QUICK)
            holder = await execute(user, long["pipeline"]["id"])
            await wait_for_run(user, holder, lambda r: stage_states(r).get("long") == "RUNNING")
            # The kill comes once the command runs: DVC has then finished editing its .dvc/tmp/rwlock (killed in the
            # middle of that write, DVC leaves the file empty, and refuses every later operation in the workspace).
            pid_file = workspace_of(stack, project["id"]) / "pid.txt"
            await wait_for_run(user, holder, lambda _: pid_file.exists() and pid_file.read_text().strip() != "")
            waiting = await execute(user, quick["pipeline"]["id"])
            runs_before = len((await user.execute(RUNS))["runs"]["edges"])

            stack.worker.kill()
            services.redis.stop()
            api_log = (stack.log_dir / "api.log").read_text()
            refused = await user.post(
                "mutation($id: ID!) { executePipeline(id: $id) { __typename } }", {"id": quick["pipeline"]["id"]}
            )
            reads = await user.post(RUNS)
            stored = _runs_in_mongodb(stack, project["id"])
            log_during = (stack.log_dir / "api.log").read_text()[len(api_log) :]

            assert refused.status_code == 200
            assert "Redis" in error_of(refused)["message"]
            assert error_of(refused)["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            # Past the rate limiter (it lets requests through without Redis) to where the run is stored: not kept.
            assert "rate limit not counted" in log_during, log_during[-2000:]
            assert stored == 2, f"{stored} runs stored; the refused executePipeline left one behind"
            assert reads.status_code == 200 and len(reads.json()["data"]["runs"]["edges"]) == runs_before

            services.restart_redis()
            replacement = start_worker(stack.env, stack.log_dir, name="worker-after-redis")
            try:
                lost = await finished(user, holder, seconds=60)
                done = await finished(user, waiting, seconds=60)
            finally:
                replacement.stop()
            assert lost["state"] == "FAILED" and lost["error"] == "worker lost"
            assert done["state"] == "SUCCEEDED", done
            runs_after = len((await user.execute(RUNS))["runs"]["edges"])
            assert runs_after == runs_before and _runs_in_mongodb(stack, project["id"]) == 2

    reliability.record(
        "Faults",
        "Redis stopped and restarted empty",
        tried="worker killed and Redis stopped while one run executes and another waits in the queue; "
        "executePipeline during the outage; Redis restarted with no data, a new worker started",
        observed=f"during: executePipeline passes the rate limiter and answers {error_of(refused)['message']!r} "
        f"({error_of(refused)['extensions']['code']}) with {stored} runs stored (the two from before), reads still "
        f"answer; after: the running run is {lost['state']} {lost['error']!r}, the queued run is re-queued from "
        f"MongoDB and {done['state']}; {runs_after} runs in all",
    )


def _runs_in_mongodb(stack: Stack, project_id: str) -> int:
    client: MongoClient[dict[str, Any]] = MongoClient(stack.env["MONGODB_URL"], serverSelectionTimeoutMS=5000)
    try:
        return client[stack.env["MONGODB_DATABASE"]].runs.count_documents({"project_id": project_id})
    finally:
        client.close()
