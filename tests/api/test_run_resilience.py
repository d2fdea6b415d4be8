"""Runs against faults and scale-out: a worker killed mid-run, several API processes, reads during a run."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.pipeline_fixtures import create_pipeline
from tests.api.run_helpers import CANCEL, execute, finished, follow, stage_states, wait_for_run
from tests.api.test_runs import is_running
from tests.conftest import CREATE_PROJECT, GraphQLClient, create_user_with_cli, workspace_of
from tests.processes import stage_pid
from tests.reliability import ReliabilityLog
from tests.stack import Stack, free_port, running_stack, start_api, start_worker, wait_until_healthy

MakeProject = Callable[..., Awaitable[dict[str, Any]]]

LONG_STAGE = {"name": "long", "command": "sh -c 'echo $$ > pid.txt; sleep 60'", "outs": ["never.txt"]}
QUICK_STAGE = {"name": "quick", "command": "echo done > quick.txt", "outs": ["quick.txt"]}

STATUS_AND_PLAN = """
query($id: ID!) {
  pipeline(id: $id) {
    ... on Pipeline {
      status { __typename ... on PipelineStatus { stale stages { name upToDate } } ... on Error { message } }
    }
  }
}
"""
DRY_RUN = """
mutation($id: ID!) {
  dryRunPipeline(id: $id) { __typename ... on DryRunPlan { stale stages { name certainty } } ... on Error { message } }
}
"""


async def test_a_worker_killed_mid_run_fails_the_run_and_the_queue_goes_on(
    tmp_path: Path, reliability: ReliabilityLog
) -> None:
    with running_stack(
        tmp_path / "workspaces", tmp_path, RUN_LOST_AFTER_SECONDS="3", RUN_HEARTBEAT_SECONDS="0.5"
    ) as stack:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
            gql = GraphQLClient(http, create_user_with_cli(stack, "killer"), "killer")
            project = (await gql.execute(CREATE_PROJECT, {"input": {"name": "killed"}}))["createProject"]["project"]
            long = await create_pipeline(gql, project["id"], name="long", stages=[LONG_STAGE])
            quick = await create_pipeline(gql, project["id"], name="quick", stages=[QUICK_STAGE])
            doomed = await execute(gql, long["pipeline"]["id"])
            await wait_for_run(gql, doomed, lambda r: stage_states(r).get("long") == "RUNNING")
            pid_file = workspace_of(stack, project["id"]) / "pid.txt"
            await wait_for_run(gql, doomed, lambda _: pid_file.exists() and pid_file.read_text().strip() != "")
            command = stage_pid(pid_file)
            queued = await execute(gql, quick["pipeline"]["id"])

            stack.worker.kill()
            replacement = start_worker(stack.env, stack.log_dir, name="replacement-worker")
            try:
                lost = await finished(gql, doomed, seconds=30)
                done = await finished(gql, queued, seconds=30)
            finally:
                replacement.stop()

            assert lost["state"] == "FAILED"
            assert lost["error"] == "worker lost"
            assert stage_states(lost) == {"long": "FAILED"}
            assert not is_running(command), "the lost run's stage must not keep running"
            assert done["state"] == "SUCCEEDED", done
            reliability.record(
                "Faults",
                "worker kill -9 during a run",
                tried="kill -9 of the only worker while a stage runs `sleep 60`, a second run queued behind it",
                observed="run FAILED with 'worker lost' (stage FAILED), the stage's process gone, "
                "the queued run SUCCEEDED on a new worker",
            )


async def test_subscribers_on_two_api_processes_see_the_same_events(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    port = free_port()
    second_api = start_api(stack.env, stack.log_dir, port, name="second-api")
    try:
        second_url = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(wait_until_healthy, second_url, [second_api])
        project = await make_project()
        stages = [
            {"name": "talk", "command": "for i in 1 2 3; do echo hello $i; sleep 0.2; done > t.txt", "outs": ["t.txt"]}
        ]
        written = await create_pipeline(gql, project["id"], stages=stages)
        run_id = await execute(gql, written["pipeline"]["id"])

        first, second = await asyncio.gather(
            follow(stack.base_url, gql, run_id, after=0), follow(second_url, gql, run_id, after=0)
        )

        strip = [(u["seq"], u["type"], u["stage"], u["stageState"], u["text"]) for u in first[1:]]
        assert strip == [(u["seq"], u["type"], u["stage"], u["stageState"], u["text"]) for u in second[1:]]
        assert first[-1]["runState"] == "SUCCEEDED"
    finally:
        second_api.stop()


async def test_status_and_dry_run_answer_while_a_run_holds_the_workspace(
    gql: GraphQLClient, make_project: MakeProject
) -> None:
    project = await make_project()
    written = await create_pipeline(gql, project["id"], stages=[LONG_STAGE | {"command": "sleep 60"}])
    pipeline_id = written["pipeline"]["id"]
    # A status known from before the run, to answer with while the run holds the workspace.
    await gql.execute(STATUS_AND_PLAN, {"id": pipeline_id})
    run_id = await execute(gql, pipeline_id)
    try:
        await wait_for_run(gql, run_id, lambda r: stage_states(r).get("long") == "RUNNING")
        status = (await gql.execute(STATUS_AND_PLAN, {"id": pipeline_id}))["pipeline"]["status"]
        plan = (await gql.execute(DRY_RUN, {"id": pipeline_id}))["dryRunPipeline"]
    finally:
        # Whatever happened above, the run ends here (cancelRun ends it within 2 s): none is left RUNNING.
        cancelled = (await gql.execute(CANCEL, {"id": run_id}))["cancelRun"]

    assert status["__typename"] == "PipelineStatus", status
    assert [s["name"] for s in status["stages"]] == ["long"]
    assert plan["__typename"] == "DryRunPlan", plan
    assert [s["name"] for s in plan["stages"]] == ["long"]
    assert plan["stale"] is True and status["stale"] is True
    assert cancelled["run"]["state"] == "CANCELLED"


@pytest.mark.parametrize("unknown", ["65f000000000000000000000", "nonsense"])
async def test_run_queries_and_mutations_on_unknown_runs(gql: GraphQLClient, unknown: str) -> None:
    run = (await gql.execute("query($id: ID!) { run(id: $id) { __typename } }", {"id": unknown}))["run"]
    cancel = (await gql.execute(CANCEL, {"id": unknown}))["cancelRun"]
    assert run["__typename"] == "NotFoundError"
    assert cancel["__typename"] == "NotFoundError"
