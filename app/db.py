"""The MongoDB client and the indexes every collection relies on."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

Document = dict[str, Any]
Database = AsyncDatabase[Document]


def create_client(url: str) -> AsyncMongoClient[Document]:
    # A short server-selection timeout turns "MongoDB is down" into a prompt, clear error.
    return AsyncMongoClient(url, serverSelectionTimeoutMS=5000, tz_aware=True)


async def ensure_indexes(db: Database) -> None:
    await db.users.create_index([("name", ASCENDING)], unique=True)
    await db.api_tokens.create_index([("hash", ASCENDING)], unique=True)
    await db.api_tokens.create_index([("user_id", ASCENDING)])
    await db.projects.create_index([("owner", ASCENDING), ("name", ASCENDING)], unique=True)
    await db.projects.create_index([("members.user_id", ASCENDING)])
    await db.pipelines.create_index([("project_id", ASCENDING), ("name", ASCENDING)], unique=True)
    await db.pipelines.create_index([("project_id", ASCENDING), ("path", ASCENDING)], unique=True)
    await db.runs.create_index([("project_id", ASCENDING), ("_id", DESCENDING)])
    await db.runs.create_index([("pipeline_id", ASCENDING), ("_id", DESCENDING)])
    await db.runs.create_index([("state", ASCENDING), ("heartbeat_at", ASCENDING)])
    await db.run_events.create_index([("run_id", ASCENDING), ("seq", ASCENDING)], unique=True)
    await db.run_events.create_index([("run_id", ASCENDING), ("stage", ASCENDING), ("offset", ASCENDING)])
    # The buckets a long run's reads go through (app.repositories.events); FerretDB's get GIN companions too.
    await db.run_events.create_index([("seq_bucket", ASCENDING)])
    await db.run_events.create_index([("log_bucket", ASCENDING)])
    await db.run_results.create_index([("run_id", ASCENDING)], unique=True)
    await db.run_results.create_index([("pipeline_id", ASCENDING), ("read_at", DESCENDING)])
    await db.run_result_images.create_index([("run_id", ASCENDING), ("index", ASCENDING)])
    await db.experiments.create_index([("pipeline_id", ASCENDING), ("_id", DESCENDING)])
    await db.experiments.create_index([("run_id", ASCENDING)])
    await db.experiments.create_index([("sweep_id", ASCENDING), ("_id", ASCENDING)])
    await db.experiments.create_index([("project_id", ASCENDING), ("name", ASCENDING)], unique=True)
