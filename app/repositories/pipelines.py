"""Pipeline documents: what users asked for, plus the last validation and status DVC gave."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.db import Database, Document
from app.domain.errors import Conflict, NotFound
from app.domain.pages import Page
from app.domain.pipelines import Pipeline, PipelineSource, StageSpec, StageStatus, ValidationReport
from app.domain.runs import Run
from app.repositories.ids import after_filter, parse_object_id


def _to_pipeline(doc: Document) -> Pipeline:
    validation = doc.get("validation")
    return Pipeline(
        id=str(doc["_id"]),
        project_id=doc["project_id"],
        name=doc["name"],
        path=doc["path"],
        description=doc.get("description"),
        source=PipelineSource(doc.get("source", PipelineSource.API)),
        stages=[StageSpec.from_dict(s) for s in doc.get("stages", [])],
        version=int(doc.get("version", 1)),
        validation=ValidationReport.from_dict(validation) if validation else None,
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
        last_run_id=(doc.get("last_run") or {}).get("id"),
        run_count=int(doc.get("run_count", 0)),
    )


def _last_status(doc: Document) -> tuple[list[StageStatus], datetime] | None:
    stored = doc.get("last_status")
    if not stored:
        return None
    return [StageStatus.from_dict(s) for s in stored["stages"]], stored["checked_at"]


class PipelineRepository:
    def __init__(self, db: Database) -> None:
        self._collection = db.pipelines

    async def get(self, pipeline_id: str) -> Pipeline:
        doc = await self._collection.find_one({"_id": parse_object_id(pipeline_id, resource="pipeline")})
        if doc is None:
            raise NotFound("pipeline", pipeline_id)
        return _to_pipeline(doc)

    async def find_by_name(self, *, project_id: str, name: str) -> Pipeline | None:
        doc = await self._collection.find_one({"project_id": project_id, "name": name})
        return None if doc is None else _to_pipeline(doc)

    async def list_page(self, *, project_id: str, first: int, after: str | None) -> Page[Pipeline]:
        query: Document = {"project_id": project_id, **after_filter(after, resource="pipeline cursor")}
        docs = await self._collection.find(query).sort("_id", 1).limit(first + 1).to_list()
        return Page(items=[_to_pipeline(d) for d in docs[:first]], has_next_page=len(docs) > first)

    async def insert(
        self,
        *,
        project_id: str,
        name: str,
        path: str,
        description: str | None,
        source: PipelineSource,
        stages: list[StageSpec],
        validation: ValidationReport | None,
    ) -> Pipeline:
        now = datetime.now(UTC)
        doc: Document = {
            "project_id": project_id,
            "name": name,
            "path": path,
            "description": description,
            "source": source.value,
            "stages": [s.to_dict() for s in stages],
            "version": 1,
            "validation": validation.to_dict() if validation else None,
            "created_at": now,
            "updated_at": now,
        }
        try:
            result = await self._collection.insert_one(doc)
        except DuplicateKeyError as error:
            raise Conflict(f"a pipeline named {name!r} or at {path!r} already exists in this project") from error
        doc["_id"] = result.inserted_id
        return _to_pipeline(doc)

    async def replace_stages(
        self,
        *,
        pipeline_id: str,
        expected_version: int,
        stages: list[StageSpec],
        description: str | None,
        validation: ValidationReport | None,
    ) -> Pipeline:
        """Compare-and-set on ``version``: a concurrent update makes this raise Conflict."""
        update: dict[str, Any] = {
            "$set": {
                "stages": [s.to_dict() for s in stages],
                "description": description,
                "validation": validation.to_dict() if validation else None,
                "updated_at": datetime.now(UTC),
            },
            "$inc": {"version": 1},
        }
        doc = await self._collection.find_one_and_update(
            {"_id": parse_object_id(pipeline_id, resource="pipeline"), "version": expected_version},
            update,
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            current = await self.get(pipeline_id)
            raise Conflict(
                f"pipeline {current.name!r} is at version {current.version}, not {expected_version}: "
                "it was changed by someone else; reload it and apply your change again"
            )
        return _to_pipeline(doc)

    async def set_validation(self, pipeline_id: str, report: ValidationReport) -> None:
        await self._collection.update_one(
            {"_id": parse_object_id(pipeline_id, resource="pipeline")},
            {"$set": {"validation": report.to_dict()}},
        )

    async def set_last_status(self, pipeline_id: str, statuses: list[StageStatus], checked_at: datetime) -> None:
        await self._collection.update_one(
            {"_id": parse_object_id(pipeline_id, resource="pipeline")},
            {"$set": {"last_status": {"stages": [s.to_dict() for s in statuses], "checked_at": checked_at}}},
        )

    async def last_status(self, pipeline_id: str) -> tuple[list[StageStatus], datetime] | None:
        doc = await self._collection.find_one(
            {"_id": parse_object_id(pipeline_id, resource="pipeline")}, {"last_status": 1}
        )
        return None if doc is None else _last_status(doc)

    async def get_with_last_status(
        self, pipeline_id: str
    ) -> tuple[Pipeline, tuple[list[StageStatus], datetime] | None]:
        """The pipeline and its last known status, in one read."""
        doc = await self._collection.find_one({"_id": parse_object_id(pipeline_id, resource="pipeline")})
        if doc is None:
            raise NotFound("pipeline", pipeline_id)
        return _to_pipeline(doc), _last_status(doc)

    async def record_run(self, run: Run) -> None:
        """The pipeline keeps its last run and execution metadata (seed 000's execute endpoint)."""
        await self._collection.update_one(
            {"_id": parse_object_id(run.pipeline_id, resource="pipeline")},
            {
                "$set": {
                    "last_run": {
                        "id": run.id,
                        "state": run.state.value,
                        "started_at": run.started_at,
                        "finished_at": run.finished_at,
                        "error": run.error,
                    }
                },
                "$inc": {"run_count": 1},
            },
        )

    async def delete(self, pipeline_id: str) -> bool:
        result = await self._collection.delete_one({"_id": parse_object_id(pipeline_id, resource="pipeline")})
        return result.deleted_count == 1

    async def delete_for_project(self, project_id: str) -> int:
        result = await self._collection.delete_many({"project_id": project_id})
        return result.deleted_count
