"""GraphQL documents and helpers for run tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from tests.conftest import GraphQLClient
from tests.ws import subscribe

EXECUTE = """
mutation($id: ID!, $options: ExecuteInput) {
  executePipeline(id: $id, options: $options) {
    __typename
    ... on RunQueued { run { id state stages { name state } } }
    ... on Error { message }
    ... on ValidationError { issues { path message } }
  }
}
"""

CANCEL = """
mutation($id: ID!) {
  cancelRun(id: $id) {
    __typename
    ... on RunCancelled { run { id state error stages { name state error } } }
    ... on Error { message }
  }
}
"""

RUN_FIELDS = """
  id state error outputsChanged trigger retryOf triggeredBy lastSeq durationSeconds
  options { force targets keepGoing timeoutSeconds }
  counts { succeeded failed skipped notRun cancelled }
  stages {
    name command state exitCode cpuSeconds peakMemoryBytes durationSeconds startedAt finishedAt error skipReason
    log { ... on StageLog { text complete nextOffset } }
  }
"""

GET_RUN = f"""
query($id: ID!) {{ run(id: $id) {{ __typename ... on Run {{ {RUN_FIELDS} }} ... on Error {{ message }} }} }}
"""

RUN_UPDATES = """
subscription($runId: ID!, $after: Int) {
  runUpdates(runId: $runId, after: $after) {
    seq type runState stage stageState text offset message
    run { id state lastSeq stages { name state } }
  }
}
"""

FINISHED = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"}


async def execute(gql: GraphQLClient, pipeline_id: str, **options: Any) -> str:
    result = (await gql.execute(EXECUTE, {"id": pipeline_id, "options": options or None}))["executePipeline"]
    assert result["__typename"] == "RunQueued", result
    assert result["run"]["state"] == "QUEUED"
    run_id: str = result["run"]["id"]
    return run_id


async def get_run(gql: GraphQLClient, run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = (await gql.execute(GET_RUN, {"id": run_id}))["run"]
    return run


async def wait_for_run(
    gql: GraphQLClient, run_id: str, condition: Callable[[dict[str, Any]], bool], *, seconds: float = 90
) -> dict[str, Any]:
    """Poll the run until ``condition`` holds; fail with the last state seen after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        run = await get_run(gql, run_id)
        if condition(run):
            return run
        assert time.monotonic() < deadline, f"condition not met within {seconds}s: {run}"
        await asyncio.sleep(0.1)  # polling interval of a deadline-bounded wait


async def finished(gql: GraphQLClient, run_id: str, *, seconds: float = 90) -> dict[str, Any]:
    return await wait_for_run(gql, run_id, lambda r: r["state"] in FINISHED, seconds=seconds)


async def follow(
    base_url: str, gql: GraphQLClient, run_id: str, *, after: int | None = None, seconds: float = 90
) -> list[dict[str, Any]]:
    """Every update of the subscription until it completes (the run ended)."""
    updates: list[dict[str, Any]] = []

    async def collect() -> None:
        async for data in subscribe(base_url, RUN_UPDATES, {"runId": run_id, "after": after}, token=gql.token):
            updates.append(data["runUpdates"])

    await asyncio.wait_for(collect(), seconds)
    return updates


def stage_states(run: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["state"] for s in run["stages"]}
