"""Status and dry runs while a run holds the workspace: answered at once from what is known, marked stale, and
dated by the newest fact they report."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from tests.api.pipeline_fixtures import create_pipeline, write_file
from tests.api.run_helpers import execute, finished, get_run, wait_for_run
from tests.conftest import GraphQLClient, workspace_of
from tests.stack import Stack

MakeProject = Callable[..., Awaitable[dict[str, Any]]]

HOLDER = """\
import os, time
deadline = time.time() + 120
while not os.path.exists("release") and time.time() < deadline:
    time.sleep(0.02)
open("held.txt", "w").write("held")
"""

STAGES = [
    {"name": "quick", "command": "cp input.txt quick.txt", "deps": ["input.txt"], "outs": ["quick.txt"]},
    {"name": "hold", "command": "python3 hold.py", "deps": ["hold.py", "quick.txt"], "outs": ["held.txt"]},
    {"name": "after", "command": "cp held.txt after.txt", "deps": ["held.txt"], "outs": ["after.txt"]},
]

STATUS = """
query($id: ID!) {
  pipeline(id: $id) {
    ... on Pipeline {
      status { __typename ... on PipelineStatus { upToDate stale checkedAt stages { name upToDate } } }
    }
  }
}
"""

DRY_RUN = """
mutation($id: ID!, $options: DryRunInput) {
  dryRunPipeline(id: $id, options: $options) { __typename ... on DryRunPlan { stale stages { name } upToDate } }
}
"""


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def workspace_jobs(redis: Redis) -> set[bytes]:
    """Every job arq holds or answered lately, but the runs' own and the cron jobs'."""
    keys = [key async for key in redis.scan_iter(match="arq:*")]
    return {
        key
        for key in keys
        if key.startswith((b"arq:job:", b"arq:result:")) and b":cron:" not in key and b":run:" not in key
    }


async def test_status_and_dry_run_during_a_run_answer_from_what_is_known_dated_by_its_newest_fact(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    project = await make_project()
    await write_file(gql, project["id"], "input.txt", "1\n")
    await write_file(gql, project["id"], "hold.py", HOLDER)
    written = await create_pipeline(gql, project["id"], "held", STAGES)
    assert written["__typename"] == "PipelineWritten", written
    pipeline_id = written["pipeline"]["id"]
    before = (await gql.execute(STATUS, {"id": pipeline_id}))["pipeline"]["status"]
    assert before["stale"] is False and before["upToDate"] is False

    run_id = await execute(gql, pipeline_id)
    try:
        running = await wait_for_run(
            gql, run_id, lambda r: any(s["name"] == "hold" and s["state"] == "RUNNING" for s in r["stages"])
        )
        quick = next(s for s in running["stages"] if s["name"] == "quick")
        assert quick["state"] == "SUCCEEDED"

        redis = Redis.from_url(stack.env["REDIS_URL"])
        jobs_before = await workspace_jobs(redis)
        statuses = await asyncio.gather(*(gql.execute(STATUS, {"id": pipeline_id}) for _ in range(10)))
        plan = (await gql.execute(DRY_RUN, {"id": pipeline_id, "options": {"targets": ["after"]}}))["dryRunPipeline"]
        single = (
            await gql.execute(DRY_RUN, {"id": pipeline_id, "options": {"targets": ["after"], "singleItem": True}})
        )["dryRunPipeline"]
        assert (await get_run(gql, run_id))["state"] == "RUNNING"  # every answer came while the run held on
        # Answered by the API from what is known: no worker job was queued for them.
        assert await workspace_jobs(redis) == jobs_before
        await redis.aclose()
    finally:
        (workspace_of(stack, project["id"]) / "release").touch()

    for data in statuses:
        status = data["pipeline"]["status"]
        assert status["stale"] is True
        assert {s["name"]: s["upToDate"] for s in status["stages"]} == {"quick": True, "hold": False, "after": False}
        # Not the status from before the run: the run has since brought `quick` up to date.
        assert at(status["checkedAt"]) == at(quick["finishedAt"]) > at(before["checkedAt"])
    assert plan["stale"] is True and [s["name"] for s in plan["stages"]] == ["hold", "after"]
    assert single["stale"] is True and [s["name"] for s in single["stages"]] == ["after"]
    final = await finished(gql, run_id)
    assert final["state"] == "SUCCEEDED", final
    fresh = (await gql.execute(STATUS, {"id": pipeline_id}))["pipeline"]["status"]
    assert fresh["stale"] is False and fresh["upToDate"] is True
