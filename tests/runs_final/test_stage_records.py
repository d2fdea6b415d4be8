"""A run's stages are stored as a list of records, never as field names (stage names are user data); run documents
stored before, with a map of stages by name and their order beside it, still read the same."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from tests.api.pipeline_fixtures import create_pipeline
from tests.api.run_helpers import execute, finished, get_run
from tests.runs_final.conftest import new_project
from tests.stack import Stack

STAGE_FIELDS = {"command": "true", "exit_code": None, "error": None, "skip_reason": None, "log_bytes": 0}


async def test_a_run_stored_with_the_old_map_of_stages_reads_in_its_order(
    stack: Stack, users_of: Any, mongo: Any
) -> None:
    user = users_of(stack).make()
    project_id = await new_project(user)
    written = await create_pipeline(user, project_id, name="old", stages=[{"name": "s", "command": "true"}])
    now = datetime.now(UTC)
    old_shape = {
        "project_id": project_id,
        "pipeline_id": written["pipeline"]["id"],
        "pipeline_name": "old",
        "state": "succeeded",
        "options": {},
        "triggered_by": user.name,
        "trigger": "api",
        "created_at": now,
        "started_at": now,
        "finished_at": now,
        "last_seq": 3,
        "stage_order": ["zeta", "alpha"],
        "stages": {
            "alpha": {"name": "alpha", "state": "succeeded", **STAGE_FIELDS},
            "zeta": {"name": "zeta", "state": "skipped", **STAGE_FIELDS},
        },
    }
    run_id = str(mongo.runs.insert_one(old_shape).inserted_id)

    run = await get_run(user, run_id)

    assert [(s["name"], s["state"]) for s in run["stages"]] == [("zeta", "SKIPPED"), ("alpha", "SUCCEEDED")]


async def test_stages_are_stored_as_a_list_of_records(stack: Stack, users_of: Any, mongo: Any) -> None:
    user = users_of(stack).make()
    project_id = await new_project(user)
    written = await create_pipeline(user, project_id, name="new", stages=[{"name": "s", "command": "echo > s.txt"}])
    run = await finished(user, await execute(user, written["pipeline"]["id"]), seconds=60)

    stored = mongo.runs.find_one({"_id": ObjectId(run["id"])})
    assert run["state"] == "SUCCEEDED"
    assert [(s["name"], s["state"]) for s in stored["stages"]] == [("s", "succeeded")]
    assert "stage_order" not in stored
