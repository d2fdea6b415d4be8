"""On the local stack, FerretDB's pushed-down equality filters are PostgreSQL index reads.

.ci/postgres-gin-companions.sql gives every btree FerretDB creates over `_jsonb -> 'field'` a GIN companion per
field, which serves the `@>` that FerretDB v1.24.2 sends for an equality. FerretDB's `explain` answers with
PostgreSQL's plan, so the test reads the access path from it. Against another server (MONGODB_URL given: real
MongoDB) there is nothing of ours to check.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient

from app.db import Database, Document, ensure_indexes
from tests.stack import Stack


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[Database]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(stack.env["MONGODB_URL"], tz_aware=True)
    database: Database = client[f"gin_{ObjectId()}"]
    await ensure_indexes(database)
    yield database
    await client.drop_database(database.name)
    await client.close()


def _access(node: Any) -> list[str]:
    """The node types and index names of a PostgreSQL plan, depth first."""
    if isinstance(node, list):
        return [a for item in node for a in _access(item)]
    if not isinstance(node, dict):
        return []
    here = [f"{node['Node Type']} {node.get('Index Name', '')}".strip()] if "Node Type" in node else []
    return here + [a for value in node.values() for a in _access(value)]


async def test_equality_filters_read_a_gin_index(db: Database) -> None:
    run_id = str(ObjectId())
    owners = [str(ObjectId()) if i % 50 else run_id for i in range(2_000)]
    events = [
        {"run_id": o, "seq": i, "type": "log", "seq_bucket": f"{o}:{i // 128}", "log_bucket": f"{o}:s:0"}
        for i, o in enumerate(owners)
    ]
    await db.run_events.insert_many(events)
    await db.runs.insert_many([{"project_id": str(ObjectId()), "state": "queued"} for _ in range(500)])
    some_run = await db.runs.find_one({})
    assert some_run is not None

    plans = {
        "run_events {run_id}": await db.command({"explain": {"find": "run_events", "filter": {"run_id": run_id}}}),
        "runs {_id}": await db.command({"explain": {"find": "runs", "filter": {"_id": some_run["_id"]}}}),
    }
    for bucket in ("seq_bucket", "log_bucket"):  # what EventRepository reads a run's events by (ensure_indexes)
        query = {"find": "run_events", "filter": {bucket: events[0][bucket]}}
        plans[f"run_events {{{bucket}}}"] = await db.command({"explain": query})
    if "filterPushdown" not in plans["runs {_id}"]:
        pytest.skip("not FerretDB (MONGODB_URL names another server): its plans are MongoDB's own")
    for name, plan in plans.items():
        assert plan["filterPushdown"] is True, name
        access = _access(plan["queryPlanner"])
        assert any(a.startswith("Bitmap Index Scan") and a.endswith("_gin") for a in access), (
            f"{name}: {access}; a PostgreSQL given with POSTGRESQL_URL needs .ci/postgres-gin-companions.sql applied"
        )
        assert not any(a.startswith("Seq Scan") for a in access), (name, access)

    # Same documents as without the index: an index only changes the access path.
    found = await db.run_events.find({"run_id": run_id}).sort("seq", 1).to_list()
    assert [d["seq"] for d in found] == [i for i in range(2_000) if i % 50 == 0]
