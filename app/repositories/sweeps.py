"""Sweep documents (``sweeps``): the grid asked for and its limit; its experiments name it (``sweep_id``)."""

from __future__ import annotations

from datetime import UTC, datetime

from app.db import Database, Document
from app.domain.errors import NotFound
from app.domain.experiments import Sweep, SweepAxis
from app.repositories.ids import parse_object_id


def _to_sweep(doc: Document) -> Sweep:
    return Sweep(
        id=str(doc["_id"]),
        project_id=doc["project_id"],
        pipeline_id=doc["pipeline_id"],
        name=doc["name"],
        grid=[SweepAxis.from_dict(a) for a in doc.get("grid", [])],
        max_parallel=int(doc.get("max_parallel", 0)),
        base_rev=doc.get("base_rev"),
        created_by=doc["created_by"],
        created_at=doc["created_at"],
        cancel_requested=bool(doc.get("cancel_requested", False)),
    )


class SweepRepository:
    def __init__(self, db: Database) -> None:
        self._collection = db.sweeps

    async def create(
        self,
        *,
        sweep_id: str,
        project_id: str,
        pipeline_id: str,
        name: str,
        grid: list[SweepAxis],
        max_parallel: int,
        base_rev: str | None,
        created_by: str,
    ) -> Sweep:
        doc: Document = {
            "_id": parse_object_id(sweep_id, resource="sweep"),
            "project_id": project_id,
            "pipeline_id": pipeline_id,
            "name": name,
            "grid": [a.to_dict() for a in grid],
            "max_parallel": max_parallel,
            "base_rev": base_rev,
            "created_by": created_by,
            "created_at": datetime.now(UTC),
            "cancel_requested": False,
        }
        await self._collection.insert_one(doc)
        return _to_sweep(doc)

    async def get(self, sweep_id: str) -> Sweep:
        doc = await self._collection.find_one({"_id": parse_object_id(sweep_id, resource="sweep")})
        if doc is None:
            raise NotFound("sweep", sweep_id)
        return _to_sweep(doc)

    async def request_cancel(self, sweep_id: str) -> None:
        await self._collection.update_one(
            {"_id": parse_object_id(sweep_id, resource="sweep")}, {"$set": {"cancel_requested": True}}
        )

    async def delete(self, sweep_id: str) -> None:
        await self._collection.delete_one({"_id": parse_object_id(sweep_id, resource="sweep")})

    async def delete_for_project(self, project_id: str) -> int:
        result = await self._collection.delete_many({"project_id": project_id})
        return result.deleted_count
