"""The periodic jobs do not wait for a free run slot: a worker whose every slot holds a long run still reaps.

Before they had a worker of their own they were jobs of the runs worker, so with MAX_CONCURRENT_PIPELINES runs going
the reaper and the re-queue did not run until one ended.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from pymongo import MongoClient

from tests.api.pipeline_fixtures import create_pipeline
from tests.api.run_helpers import CANCEL, execute, finished, get_run, wait_for_run
from tests.runs_final.conftest import new_project
from tests.stack import Stack

HEALTHY = [{"name": "healthy", "command": "echo fine > fine.txt", "outs": ["fine.txt"]}]
LONG = [{"name": "long", "command": "sleep 300", "outs": ["never.txt"]}]


@pytest.fixture(scope="module")
def one_slot_stack(private_stack_factory: Any) -> Stack:
    stack: Stack = private_stack_factory(MAX_CONCURRENT_PIPELINES="1")
    return stack


async def test_a_lost_run_is_reaped_while_the_only_run_slot_holds_a_long_run(
    one_slot_stack: Stack, users_of: Any
) -> None:
    user = users_of(one_slot_stack).make()
    healthy = await create_pipeline(user, await new_project(user), name="healthy", stages=HEALTHY)
    lost_id = await execute(user, healthy["pipeline"]["id"])
    assert (await finished(user, lost_id, seconds=60))["state"] == "SUCCEEDED"
    long = await create_pipeline(user, await new_project(user), name="long", stages=LONG)
    long_id = await execute(user, long["pipeline"]["id"])
    try:
        await wait_for_run(user, long_id, lambda r: r["state"] == "RUNNING", seconds=60)
        client: MongoClient[dict[str, Any]] = MongoClient(one_slot_stack.env["MONGODB_URL"])
        try:
            # A run left RUNNING by a job that ended, heartbeat fresh for the whole test (as in test_failures.py).
            now = datetime.now(UTC)
            client[one_slot_stack.env["MONGODB_DATABASE"]].runs.update_one(
                {"_id": ObjectId(lost_id)},
                {"$set": {"state": "running", "heartbeat_at": now + timedelta(seconds=120), "started_at": now}},
            )
        finally:
            client.close()
        assert (await get_run(user, lost_id))["state"] == "RUNNING"

        reaped = await wait_for_run(user, lost_id, lambda r: r["state"] != "RUNNING", seconds=30)

        assert (reaped["state"], reaped["error"]) == ("FAILED", "the run's job ended without ending it")
        assert (await get_run(user, long_id))["state"] == "RUNNING", "the long run is still going"
    finally:
        await user.execute(CANCEL, {"id": long_id})
        await finished(user, long_id, seconds=30)
