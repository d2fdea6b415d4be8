"""Run documents. Stages are a list of records in the run's order: stage names are user data (DVC names a stage of
another dvc.yaml ``pipelines/A/dvc.yaml:make_out``, a foreach item ``train@0.1``), so they are never field names."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument

from app.db import Database, Document
from app.domain.errors import NotFound
from app.domain.pages import Page
from app.domain.runs import Run, RunOptions, RunState, StageRun, Trigger
from app.repositories.ids import parse_object_id


def _stages_of(doc: Document) -> list[StageRun]:
    stored = doc.get("stages") or []
    if isinstance(stored, dict):
        # Documents written before stages became a list: a map by name, and the order beside it.
        return [StageRun.from_dict(stored[name]) for name in doc.get("stage_order", []) if name in stored]
    return [StageRun.from_dict(s) for s in stored]


def _to_run(doc: Document) -> Run:
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
        stages=_stages_of(doc),
        started_at=doc.get("started_at"),
        finished_at=doc.get("finished_at"),
        error=doc.get("error"),
        outputs_changed=list(doc.get("outputs_changed", [])),
        last_seq=int(doc.get("last_seq", 0)),
        retry_of=doc.get("retry_of"),
        worker=doc.get("worker"),
        commit_sha=doc.get("commit_sha"),
        commit_note=doc.get("commit_note"),
        heartbeat_at=doc.get("heartbeat_at"),
        events_bucketed=bool(doc.get("events_bucketed", False)),
    )


def stages_document(stages: list[StageRun]) -> dict[str, Any]:
    return {"stages": [s.to_dict() for s in stages]}


def _running(run_id: str) -> Document:
    """The filter of a run that is still RUNNING: a write of its worker never lands on a run settled meanwhile."""
    return {"_id": parse_object_id(run_id, resource="run"), "state": RunState.RUNNING.value}


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
            # Its events will carry their buckets (EventRepository reads them so); runs stored before do not say so.
            "events_bucketed": True,
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
        """Newest first.

        One project (the usual case: ``runs(projectId:)``, or a pipeline's runs) is an equality, not a one-element
        ``$in``: same result and the same index on MongoDB, but FerretDB v1 pushes only equalities down to its
        PostgreSQL (where .ci/postgres-gin-companions.sql gives them an index); a ``$in`` it filters in Go after
        reading the whole collection.
        """
        query: Document = {"project_id": project_ids[0] if len(project_ids) == 1 else {"$in": project_ids}}
        if pipeline_id is not None:
            query["pipeline_id"] = pipeline_id
        if state is not None:
            query["state"] = state.value
        if after is not None:
            query["_id"] = {"$lt": parse_object_id(after, resource="run cursor")}
        docs = await self._collection.find(query).sort("_id", -1).limit(first + 1).to_list()
        return Page(items=[_to_run(d) for d in docs[:first]], has_next_page=len(docs) > first)

    async def transition(
        self,
        run_id: str,
        *,
        from_states: tuple[RunState, ...],
        to_state: RunState,
        seq: int,
        stages: list[StageRun] | None = None,
        **fields: Any,
    ) -> Run | None:
        """Move the run to ``to_state`` (with its ``stages``, in the same write) only if it is in one of
        ``from_states``: one writer wins."""
        if stages is not None:
            fields |= stages_document(stages)
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

    async def set_stages(self, run_id: str, stages: list[StageRun], *, seq: int) -> bool:
        """Replace the stages of a RUNNING run; False when it is no longer RUNNING (settled by someone else)."""
        result = await self._collection.update_one(
            _running(run_id), {"$set": {"last_seq": seq, **stages_document(stages)}}
        )
        return result.matched_count == 1

    async def update_stage(self, run_id: str, index: int, stage: StageRun, *, seq: int) -> bool:
        """Replace the record at ``index`` in the stages of a RUNNING run, if it is still ``stage``'s; False when the
        run is no longer RUNNING (its final state is not overwritten)."""
        result = await self._collection.update_one(
            {**_running(run_id), f"stages.{index}.name": stage.name},
            {"$set": {"last_seq": seq, f"stages.{index}": stage.to_dict()}},
        )
        return result.matched_count == 1

    async def request_cancel(self, run_id: str) -> None:
        await self.set_fields(run_id, cancel_requested=True)

    async def should_stop(self, run_id: str) -> bool:
        """True when someone asked to cancel the run, or it is no longer RUNNING (declared lost)."""
        doc = await self._collection.find_one(
            {"_id": parse_object_id(run_id, resource="run")}, {"cancel_requested": 1, "state": 1}
        )
        return doc is None or bool(doc.get("cancel_requested")) or doc.get("state") != RunState.RUNNING.value

    async def settle(
        self,
        run_id: str,
        *,
        state: RunState,
        error: str,
        stages: list[StageRun],
        seq: int,
        seen_seq: int | None = None,
        silent_since: datetime | None = None,
    ) -> Run | None:
        """RUNNING -> ``state`` with its stages settled (``stages``) and its final event numbered ``seq``, in one
        write that nobody can see half done.

        With ``seen_seq``, only if nothing was recorded since the caller read the run at that number (the stages it
        settled are still the run's); with ``silent_since``, only if its worker has not reported since (a heartbeat
        that just came in wins). None when the write did not happen.
        """
        query = _running(run_id)
        if seen_seq is not None:
            query["last_seq"] = seen_seq
        if silent_since is not None:
            query["heartbeat_at"] = {"$lt": silent_since}
        doc = await self._collection.find_one_and_update(
            query,
            {
                "$set": {
                    "state": state.value,
                    "error": error,
                    "finished_at": datetime.now(UTC),
                    "last_seq": seq,
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

    async def running_since(self, moment: datetime) -> list[Run]:
        """Runs marked RUNNING that started before ``moment``."""
        docs = await self._collection.find({"state": RunState.RUNNING.value, "started_at": {"$lt": moment}}).to_list()
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
