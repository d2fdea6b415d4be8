"""Run documents. Stages are kept as a map by name (DVC names carry no dots) plus their order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument

from app.db import Database, Document
from app.domain.errors import NotFound
from app.domain.pages import Page
from app.domain.runs import Run, RunOptions, RunState, StageRun, Trigger
from app.repositories.ids import parse_object_id


def _to_run(doc: Document) -> Run:
    stages = doc.get("stages", {})
    return Run(
        id=str(doc["_id"]),
        project_id=doc["project_id"],
        pipeline_id=doc["pipeline_id"],
        pipeline_name=doc["pipeline_name"],
        state=RunState(doc["state"]),
        options=RunOptions.from_dict(doc.get("options", {})),
        triggered_by=doc["triggered_by"],
        trigger=Trigger(doc.get("trigger", Trigger.API)),
        created_at=doc["created_at"],
        stages=[StageRun.from_dict(stages[name]) for name in doc.get("stage_order", []) if name in stages],
        started_at=doc.get("started_at"),
        finished_at=doc.get("finished_at"),
        error=doc.get("error"),
        outputs_changed=list(doc.get("outputs_changed", [])),
        last_seq=int(doc.get("last_seq", 0)),
        retry_of=doc.get("retry_of"),
        worker=doc.get("worker"),
    )


def stages_document(stages: list[StageRun]) -> dict[str, Any]:
    return {"stage_order": [s.name for s in stages], "stages": {s.name: s.to_dict() for s in stages}}


class RunRepository:
    def __init__(self, db: Database) -> None:
        self._collection = db.runs

    async def create(
        self,
        *,
        project_id: str,
        pipeline_id: str,
        pipeline_name: str,
        options: RunOptions,
        triggered_by: str,
        trigger: Trigger,
        stages: list[StageRun],
        retry_of: str | None = None,
    ) -> Run:
        doc: Document = {
            "project_id": project_id,
            "pipeline_id": pipeline_id,
            "pipeline_name": pipeline_name,
            "state": RunState.QUEUED.value,
            "options": options.to_dict(),
            "triggered_by": triggered_by,
            "trigger": trigger.value,
            "created_at": datetime.now(UTC),
            "last_seq": 0,
            "cancel_requested": False,
            "retry_of": retry_of,
            **stages_document(stages),
        }
        result = await self._collection.insert_one(doc)
        doc["_id"] = result.inserted_id
        return _to_run(doc)

    async def get(self, run_id: str) -> Run:
        doc = await self._collection.find_one({"_id": parse_object_id(run_id, resource="run")})
        if doc is None:
            raise NotFound("run", run_id)
        return _to_run(doc)

    async def list_page(
        self,
        *,
        project_ids: list[str],
        pipeline_id: str | None,
        state: RunState | None,
        first: int,
        after: str | None,
    ) -> Page[Run]:
        """Newest first."""
        query: Document = {"project_id": {"$in": project_ids}}
        if pipeline_id is not None:
            query["pipeline_id"] = pipeline_id
        if state is not None:
            query["state"] = state.value
        if after is not None:
            query["_id"] = {"$lt": parse_object_id(after, resource="run cursor")}
        docs = await self._collection.find(query).sort("_id", -1).limit(first + 1).to_list()
        return Page(items=[_to_run(d) for d in docs[:first]], has_next_page=len(docs) > first)

    async def transition(
        self, run_id: str, *, from_states: tuple[RunState, ...], to_state: RunState, seq: int, **fields: Any
    ) -> Run | None:
        """Move the run to ``to_state`` only if it is in one of ``from_states``: one writer wins."""
        doc = await self._collection.find_one_and_update(
            {"_id": parse_object_id(run_id, resource="run"), "state": {"$in": [s.value for s in from_states]}},
            {"$set": {"state": to_state.value, "last_seq": seq, **fields}},
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else _to_run(doc)

    async def claim(self, run_id: str, *, worker: str, at: datetime) -> Run | None:
        """QUEUED -> RUNNING for ``worker``, numbering the RUNNING event in the same write (``last_seq`` + 1).

        None when the run is no longer queued (cancelled, or another worker has it): one writer wins.
        """
        doc = await self._collection.find_one_and_update(
            {"_id": parse_object_id(run_id, resource="run"), "state": RunState.QUEUED.value},
            {
                "$set": {"state": RunState.RUNNING.value, "started_at": at, "heartbeat_at": at, "worker": worker},
                "$inc": {"last_seq": 1},
            },
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else _to_run(doc)

    async def set_fields(self, run_id: str, **fields: Any) -> None:
        await self._collection.update_one({"_id": parse_object_id(run_id, resource="run")}, {"$set": fields})

    async def set_stages(self, run_id: str, stages: list[StageRun], *, seq: int) -> None:
        await self.set_fields(run_id, last_seq=seq, **stages_document(stages))

    async def update_stage(self, run_id: str, stage: StageRun, *, seq: int) -> None:
        await self.set_fields(run_id, last_seq=seq, **{f"stages.{stage.name}": stage.to_dict()})

    async def request_cancel(self, run_id: str) -> None:
        await self.set_fields(run_id, cancel_requested=True)

    async def should_stop(self, run_id: str) -> bool:
        """True when someone asked to cancel the run, or it is no longer RUNNING (declared lost)."""
        doc = await self._collection.find_one(
            {"_id": parse_object_id(run_id, resource="run")}, {"cancel_requested": 1, "state": 1}
        )
        return doc is None or bool(doc.get("cancel_requested")) or doc.get("state") != RunState.RUNNING.value

    async def claim_lost(
        self, run_id: str, *, silent_since: datetime, error: str, stages: list[StageRun], seen_seq: int
    ) -> Run | None:
        """RUNNING -> FAILED with its stages settled (``stages``), in one write that nobody can see half done.

        Only if its worker is still silent (a heartbeat that just came in wins) and nothing was recorded since the
        caller read the run at ``seen_seq`` (the stages it settled are still the run's).
        """
        doc = await self._collection.find_one_and_update(
            {
                "_id": parse_object_id(run_id, resource="run"),
                "state": RunState.RUNNING.value,
                "heartbeat_at": {"$lt": silent_since},
                "last_seq": seen_seq,
            },
            {
                "$set": {
                    "state": RunState.FAILED.value,
                    "error": error,
                    "finished_at": datetime.now(UTC),
                    **stages_document(stages),
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else _to_run(doc)

    async def heartbeat(self, run_id: str, *, worker: str) -> None:
        await self.set_fields(run_id, heartbeat_at=datetime.now(UTC), worker=worker)

    async def lost_runs(self, *, silent_since: datetime) -> list[Run]:
        """Runs marked RUNNING whose worker has not reported since ``silent_since``."""
        docs = await self._collection.find(
            {"state": RunState.RUNNING.value, "heartbeat_at": {"$lt": silent_since}}
        ).to_list()
        return [_to_run(d) for d in docs]

    async def ids_for_project(self, project_id: str) -> list[str]:
        docs = await self._collection.find({"project_id": project_id}, {"_id": 1}).to_list()
        return [str(d["_id"]) for d in docs]

    async def queued_before(self, moment: datetime) -> list[str]:
        docs = await self._collection.find(
            {"state": RunState.QUEUED.value, "created_at": {"$lt": moment}}, {"_id": 1}
        ).to_list()
        return [str(d["_id"]) for d in docs]

    async def withdraw(self, run_id: str) -> bool:
        """Delete a run no worker has taken (QUEUED, no event yet): its job could not be queued."""
        query = {"_id": parse_object_id(run_id, resource="run"), "state": RunState.QUEUED.value, "last_seq": 0}
        result = await self._collection.delete_one(query)
        return bool(result.deleted_count)

    async def delete_for_project(self, project_id: str) -> int:
        result = await self._collection.delete_many({"project_id": project_id})
        return result.deleted_count
