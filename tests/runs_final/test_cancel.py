"""Runs whose worker goes away: cancelRun ends a RUNNING run within 2 s even when its worker is gone (killed) or wedged
(stopped), and a wedged worker that comes back leaves the final state alone; a worker shut down mid-run fails the run
before it exits."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest
from pymongo import MongoClient
from redis import Redis

from tests.api.pipeline_fixtures import create_pipeline
from tests.api.run_helpers import CANCEL, execute, finished, follow, get_run, stage_states, wait_for_run
from tests.api.test_runs import is_running
from tests.conftest import GraphQLClient, workspace_of
from tests.processes import stage_pid
from tests.reliability import ReliabilityLog
from tests.runs_final.conftest import new_project
from tests.stack import Stack, start_worker

CANCEL_DEADLINE_SECONDS = 2.0
LONG = {"name": "long", "command": "sh -c 'echo $$ > pid.txt; sleep 30'", "outs": ["never.txt"]}
QUICK = [{"name": "quick", "command": "echo done > quick.txt", "outs": ["quick.txt"]}]


@pytest.fixture(scope="module")
def stack(private_stack_factory: Any) -> Stack:
    # The default 30 s before a silent worker's run counts as lost: only cancelRun can end these runs in time.
    started: Stack = private_stack_factory()
    return started


async def running_long_run(stack: Stack, user: GraphQLClient) -> tuple[str, str, int]:
    """A project, and a run of its long stage with the stage's command started; (project, run, the command's pid)."""
    project_id = await new_project(user)
    long = await create_pipeline(user, project_id, name="long", stages=[LONG])
    run_id = await execute(user, long["pipeline"]["id"])
    pid_file = workspace_of(stack, project_id) / "pid.txt"
    await wait_for_run(user, run_id, lambda r: stage_states(r).get("long") == "RUNNING")
    await wait_for_run(user, run_id, lambda _: pid_file.exists() and pid_file.read_text().strip() != "")
    return project_id, run_id, stage_pid(pid_file)


async def timed_cancel(user: GraphQLClient, run_id: str) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    answer = (await user.execute(CANCEL, {"id": run_id}))["cancelRun"]
    return answer, time.monotonic() - started


def assert_cancelled(answer: dict[str, Any], elapsed: float) -> None:
    assert answer["__typename"] == "RunCancelled", answer
    assert elapsed < CANCEL_DEADLINE_SECONDS, f"cancelRun took {elapsed:.2f} s"
    run = answer["run"]
    assert (run["state"], run["error"]) == ("CANCELLED", "cancelled by request"), run
    assert run["stages"] == [{"name": "long", "state": "CANCELLED", "error": "cancelled by request"}]


async def next_run_succeeds(user: GraphQLClient, project_id: str) -> None:
    quick = await create_pipeline(user, project_id, name="quick", stages=QUICK)
    run = await finished(user, await execute(user, quick["pipeline"]["id"]), seconds=60)
    assert run["state"] == "SUCCEEDED", run


async def test_cancel_of_a_run_whose_worker_was_killed(
    stack: Stack, users_of: Any, reliability: ReliabilityLog
) -> None:
    user = users_of(stack).make()
    project_id, run_id, _ = await running_long_run(stack, user)
    following = asyncio.create_task(follow(stack.base_url, user, run_id, after=0, seconds=30))

    stack.worker.kill()
    answer, elapsed = await timed_cancel(user, run_id)

    assert_cancelled(answer, elapsed)
    updates = await following
    assert (updates[-1]["type"], updates[-1]["runState"]) == ("RUN_STATE", "CANCELLED")
    assert updates[-1]["seq"] == (await get_run(user, run_id))["lastSeq"]
    redis = Redis.from_url(stack.env["REDIS_URL"])
    try:
        assert redis.get(f"workspace-lock:{project_id}") is None, "the workspace lock of the cancelled run was freed"
    finally:
        redis.close()
    stack.worker = start_worker(stack.env, stack.log_dir, name="worker-after-kill")
    await next_run_succeeds(user, project_id)
    reliability.record(
        "Faults",
        "cancelRun of a run whose worker was killed",
        tried="kill -9 of the only worker while a stage runs, then cancelRun",
        observed=f"cancelRun answered CANCELLED (stage CANCELLED) in {elapsed:.2f} s; the subscriber got the final "
        "event; the workspace lock was freed and the next run on a new worker SUCCEEDED",
    )


async def test_cancel_of_a_run_whose_worker_is_wedged_and_comes_back(stack: Stack, users_of: Any) -> None:
    user = users_of(stack).make()
    project_id, run_id, pid = await running_long_run(stack, user)
    os.killpg(stack.worker.pid, signal.SIGSTOP)
    try:
        answer, elapsed = await timed_cancel(user, run_id)
    finally:
        os.killpg(stack.worker.pid, signal.SIGCONT)

    assert_cancelled(answer, elapsed)
    # Back, the worker notices the run was settled and stops its stage, without recording anything more.
    deadline = time.monotonic() + 30
    while is_running(pid):
        assert time.monotonic() < deadline, "the worker that came back did not stop the cancelled run's stage"
        await asyncio.sleep(0.1)  # polling interval of a deadline-bounded wait
    await next_run_succeeds(user, project_id)
    after = await get_run(user, run_id)
    assert (after["state"], after["error"]) == ("CANCELLED", "cancelled by request")
    assert [(s["name"], s["state"], s["error"]) for s in after["stages"]] == [
        ("long", "CANCELLED", "cancelled by request")
    ]
    client: MongoClient[dict[str, Any]] = MongoClient(stack.env["MONGODB_URL"])
    try:
        events = list(client[stack.env["MONGODB_DATABASE"]].run_events.find({"run_id": run_id}).sort("seq", 1))
    finally:
        client.close()
    assert events[-1]["type"] == "run_state" and events[-1]["run_state"] == "cancelled", events[-1]
    assert [e["run_state"] for e in events if e["type"] == "run_state"] == ["running", "cancelled"]
    assert after["lastSeq"] == events[-1]["seq"]


async def test_a_worker_shut_down_mid_run_fails_the_run_before_it_exits(stack: Stack, users_of: Any) -> None:
    user = users_of(stack).make()
    project_id, run_id, pid = await running_long_run(stack, user)
    following = asyncio.create_task(follow(stack.base_url, user, run_id, after=0, seconds=30))

    os.kill(stack.worker.pid, signal.SIGTERM)  # the worker alone, as an orchestrator stops it: its stages are its own
    stack.worker.popen.wait(timeout=30)
    stack.worker = start_worker(stack.env, stack.log_dir, name="worker-after-shutdown")

    run = await get_run(user, run_id)
    assert (run["state"], run["error"]) == ("FAILED", "the worker stopped during the run"), run
    assert [(s["name"], s["state"]) for s in run["stages"]] == [("long", "FAILED")]
    assert not is_running(pid), "the stage's command outlived its worker"
    updates = await following
    assert (updates[-1]["type"], updates[-1]["runState"], updates[-1]["seq"]) == ("RUN_STATE", "FAILED", run["lastSeq"])
    await next_run_succeeds(user, project_id)
