"""A run whose job fails at any step after it was claimed ends FAILED, its stages final, its final event sent, and
its workspace free for the next run. Faults come from the worker's RUN_FAULTS (workers.runs.faults), by pipeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from pymongo import MongoClient

from tests.api.pipeline_fixtures import create_pipeline
from tests.api.run_helpers import execute, finished, follow, get_run, stage_states, wait_for_run
from tests.reliability import ReliabilityLog
from tests.runs_final.conftest import new_project
from tests.stack import Stack

# Two stages in a chain; the second lasts long enough that a failure while the first is recorded meets it running.
CHAIN = [
    {"name": "first", "command": "echo one > one.txt", "outs": ["one.txt"]},
    {"name": "second", "command": "sleep 20; cat one.txt > two.txt", "deps": ["one.txt"], "outs": ["two.txt"]},
]
HEALTHY = [{"name": "healthy", "command": "echo fine > fine.txt", "outs": ["fine.txt"]}]

# The pipeline named after a step fails there; the stage states the run must end with.
EXPECTED = {
    "plan": {"first": "NOT_RUN", "second": "NOT_RUN"},
    "session": {"first": "NOT_RUN", "second": "NOT_RUN"},
    "before_first_stage": {"first": "NOT_RUN", "second": "NOT_RUN"},
    "between_stages": {"first": "SUCCEEDED", "second": "NOT_RUN"},
    "recording": {"first": "SUCCEEDED", "second": "FAILED"},
    "end": {"first": "SUCCEEDED", "second": "SUCCEEDED"},
}


FINAL_EVENT = "final_event"


def pipeline_name(step: str) -> str:
    return f"fault-{step.replace('_', '-')}"


@pytest.fixture(scope="module")
def fault_stack(private_stack_factory: Any) -> Stack:
    faults = ",".join(f"{pipeline_name(step)}={step}" for step in [*EXPECTED, FINAL_EVENT])
    stack: Stack = private_stack_factory(RUN_FAULTS=faults)
    return stack


def chain_for(step: str) -> list[dict[str, Any]]:
    # "end" lets both stages finish: no need to wait for the long one elsewhere, it is the only one that runs it.
    if step in ("end", FINAL_EVENT):
        return [CHAIN[0], CHAIN[1] | {"command": "cat one.txt > two.txt"}]
    return CHAIN


@pytest.mark.parametrize("step", list(EXPECTED))
async def test_a_fault_at_each_step_ends_the_run_failed(
    step: str, fault_stack: Stack, users_of: Any, reliability: ReliabilityLog
) -> None:
    user = users_of(fault_stack).make()
    project_id = await new_project(user)
    doomed = await create_pipeline(user, project_id, name=pipeline_name(step), stages=chain_for(step))
    healthy = await create_pipeline(user, project_id, name="healthy", stages=HEALTHY)
    assert doomed["__typename"] == healthy["__typename"] == "PipelineWritten", (doomed, healthy)

    run_id = await execute(user, doomed["pipeline"]["id"])
    updates = await follow(fault_stack.base_url, user, run_id, after=0, seconds=60)
    run = await finished(user, run_id, seconds=10)

    assert run["state"] == "FAILED", run
    assert run["error"] == f"the run failed in the worker: InjectedFault: injected fault at step {step!r} (RUN_FAULTS)"
    assert stage_states(run) == EXPECTED[step]
    assert all(s["error"] for s in run["stages"] if s["state"] in ("NOT_RUN", "FAILED")), run["stages"]
    final = updates[-1]
    assert (final["type"], final["runState"], final["message"]) == ("RUN_STATE", "FAILED", run["error"])
    assert final["seq"] == run["lastSeq"]
    # The workspace is free: the next run of the project starts at once and succeeds.
    next_run = await finished(user, await execute(user, healthy["pipeline"]["id"]), seconds=60)
    assert next_run["state"] == "SUCCEEDED", next_run
    reliability.record(
        "Faults",
        f"a run's job fails at step {step}",
        tried=f"an exception raised in the worker at step {step!r} of a two-stage run (RUN_FAULTS)",
        observed=f"run FAILED with the exception named, stages {EXPECTED[step]}, the subscriber's last update the "
        "FAILED event, the workspace free: the next run SUCCEEDED",
    )


async def test_a_run_whose_final_event_could_not_be_stored_keeps_its_state_and_gets_the_event(
    fault_stack: Stack, users_of: Any
) -> None:
    """The write of the final state succeeded, the write of its event failed: the state stands, the event follows."""
    user = users_of(fault_stack).make()
    project_id = await new_project(user)
    written = await create_pipeline(user, project_id, name=pipeline_name(FINAL_EVENT), stages=chain_for(FINAL_EVENT))

    run_id = await execute(user, written["pipeline"]["id"])
    updates = await follow(fault_stack.base_url, user, run_id, after=0, seconds=60)
    run = await finished(user, run_id, seconds=10)

    assert (run["state"], run["error"]) == ("SUCCEEDED", None), run
    assert stage_states(run) == {"first": "SUCCEEDED", "second": "SUCCEEDED"}
    final = updates[-1]
    assert (final["type"], final["runState"], final["seq"]) == ("RUN_STATE", "SUCCEEDED", run["lastSeq"])


async def test_a_run_whose_job_ended_without_ending_it_is_reaped_whatever_its_heartbeat(
    fault_stack: Stack, users_of: Any
) -> None:
    """A RUNNING run whose arq job is over (complete) while its heartbeat is fresh: nobody executes it any more."""
    user = users_of(fault_stack).make()
    project_id = await new_project(user)
    healthy = await create_pipeline(user, project_id, name="healthy", stages=HEALTHY)
    run_id = await execute(user, healthy["pipeline"]["id"])
    assert (await finished(user, run_id, seconds=60))["state"] == "SUCCEEDED"
    client: MongoClient[dict[str, Any]] = MongoClient(fault_stack.env["MONGODB_URL"])
    try:
        runs = client[fault_stack.env["MONGODB_DATABASE"]].runs
        # As a job that ended leaves its run when it could not write its end: RUNNING, and heard from so recently
        # that its heartbeat stays fresh for the whole test. Stamped once, ahead of time, rather than refreshed by a
        # loop: FerretDB v1 rewrites a whole document on update, so a refresh racing the reaper's final write could
        # put the run back to RUNNING (a lost update of the test's own making: the likely cause of one CI failure).
        now = datetime.now(UTC)
        runs.update_one(
            {"_id": ObjectId(run_id)},
            {
                "$set": {
                    "state": "running",
                    "heartbeat_at": now + timedelta(seconds=120),
                    "started_at": now - timedelta(seconds=30),
                }
            },
        )
        assert (await get_run(user, run_id))["state"] == "RUNNING"
        reaped = await wait_for_run(user, run_id, lambda r: r["state"] != "RUNNING", seconds=20)
    finally:
        client.close()

    assert reaped["state"] == "FAILED"
    assert reaped["error"] == "the run's job ended without ending it"
