"""Experiment documents (``experiments``): what was asked (overrides, base), where it stands, and its DVC ref.

The run of an experiment is an ordinary run document (trigger ``experiment``); its results are the run's.
Overrides are a list of records: file names and keys are user data, never field names.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from app.db import Database, Document
from app.domain.errors import Conflict, NotFound
from app.domain.experiments import Experiment, ExperimentSource, ExperimentState, ParamOverride
from app.domain.pages import Page
from app.domain.results import ResultsSnapshot
from app.repositories.ids import parse_object_id

# The table reads at most this many experiments of a pipeline, newest first.
TABLE_LIMIT = 500


def _to_experiment(doc: Document) -> Experiment:
    baseline, results = doc.get("baseline"), doc.get("results")
    return Experiment(
        id=str(doc["_id"]),
        project_id=doc["project_id"],
        pipeline_id=doc["pipeline_id"],
        pipeline_name=doc["pipeline_name"],
        name=doc["name"],
        base_rev=doc.get("base_rev"),
        set_params=[ParamOverride.from_dict(o) for o in doc.get("set_params", [])],
        state=ExperimentState(doc["state"]),
        run_id=doc.get("run_id"),
        created_by=doc["created_by"],
        created_at=doc["created_at"],
        started_at=doc.get("started_at"),
        finished_at=doc.get("finished_at"),
        error=doc.get("error"),
        base_sha=doc.get("base_sha"),
        exp_ref=doc.get("exp_ref"),
        exp_rev=doc.get("exp_rev"),
        baseline=None if baseline is None else ResultsSnapshot.from_dict(baseline),
        sweep_id=doc.get("sweep_id"),
        max_parallel=int(doc.get("max_parallel", 0)),
        source=ExperimentSource(doc.get("source", ExperimentSource.SERVICE.value)),
        results=None if results is None else ResultsSnapshot.from_dict(results),
    )


def experiment_document(experiment: Experiment) -> Document:
    """The document ``experiment`` is read from (``_to_experiment`` inverted): how an experiment is published."""
    return {
        "_id": parse_object_id(experiment.id, resource="experiment"),
        "project_id": experiment.project_id,
        "pipeline_id": experiment.pipeline_id,
        "pipeline_name": experiment.pipeline_name,
        "name": experiment.name,
        "base_rev": experiment.base_rev,
        "set_params": [o.to_dict() for o in experiment.set_params],
        "state": experiment.state.value,
        "run_id": experiment.run_id,
        "created_by": experiment.created_by,
        "created_at": experiment.created_at,
        "started_at": experiment.started_at,
        "finished_at": experiment.finished_at,
        "error": experiment.error,
        "base_sha": experiment.base_sha,
        "exp_ref": experiment.exp_ref,
        "exp_rev": experiment.exp_rev,
        "baseline": None if experiment.baseline is None else experiment.baseline.to_dict(),
        "sweep_id": experiment.sweep_id,
        "max_parallel": experiment.max_parallel,
        "source": experiment.source.value,
        "results": None if experiment.results is None else experiment.results.to_dict(),
    }


def experiment_of_document(doc: Document) -> Experiment:
    return _to_experiment(doc)


class ExperimentRepository:
    def __init__(self, db: Database) -> None:
        self._collection = db.experiments

    async def create(
        self,
        *,
        experiment_id: str,
        project_id: str,
        pipeline_id: str,
        pipeline_name: str,
        name: str,
        base_rev: str | None,
        set_params: list[ParamOverride],
        run_id: str,
        created_by: str,
        sweep_id: str | None = None,
        max_parallel: int = 0,
    ) -> Experiment:
        doc: Document = {
            "_id": parse_object_id(experiment_id, resource="experiment"),
            "project_id": project_id,
            "pipeline_id": pipeline_id,
            "pipeline_name": pipeline_name,
            "name": name,
            "base_rev": base_rev,
            "set_params": [o.to_dict() for o in set_params],
            "state": ExperimentState.QUEUED.value,
            "run_id": run_id,
            "created_by": created_by,
            "created_at": datetime.now(UTC),
            "sweep_id": sweep_id,
            "max_parallel": max_parallel,
        }
        try:
            await self._collection.insert_one(doc)
        except DuplicateKeyError:
            # Two requests raced for one name: the unique (project_id, name) index decides.
            raise Conflict(f"the project already has an experiment named {name!r}") from None
        return _to_experiment(doc)

    async def add_found(self, experiment: Experiment) -> bool:
        """Store an experiment found in the repository (made by DVC); False when the project has one of its name
        already (the service's own experiments are in ``refs/exps`` too, under their names)."""
        try:
            await self._collection.insert_one(experiment_document(experiment))
        except DuplicateKeyError:
            return False
        return True

    async def exp_refs(self, project_id: str) -> set[str]:
        """The DVC refs of the project's stored experiments."""
        docs = await self._collection.find({"project_id": project_id}, {"exp_ref": 1}).to_list()
        return {d["exp_ref"] for d in docs if d.get("exp_ref")}

    async def get(self, experiment_id: str) -> Experiment:
        doc = await self._collection.find_one({"_id": parse_object_id(experiment_id, resource="experiment")})
        if doc is None:
            raise NotFound("experiment", experiment_id)
        return _to_experiment(doc)

    async def of_run(self, run_id: str) -> Experiment | None:
        doc = await self._collection.find_one({"run_id": run_id})
        return None if doc is None else _to_experiment(doc)

    async def name_taken(self, *, project_id: str, name: str) -> bool:
        return await self._collection.find_one({"project_id": project_id, "name": name}) is not None

    async def list_page(
        self, *, pipeline_id: str, first: int, after: str | None, state: ExperimentState | None = None
    ) -> Page[Experiment]:
        """Newest first; only those in ``state`` when given."""
        query: Document = {"pipeline_id": pipeline_id}
        if state is not None:
            query["state"] = state.value
        if after is not None:
            query["_id"] = {"$lt": parse_object_id(after, resource="experiment cursor")}
        docs = await self._collection.find(query).sort("_id", -1).limit(first + 1).to_list()
        return Page(items=[_to_experiment(d) for d in docs[:first]], has_next_page=len(docs) > first)

    async def of_pipeline(self, pipeline_id: str, *, limit: int = TABLE_LIMIT) -> list[Experiment]:
        docs = await self._collection.find({"pipeline_id": pipeline_id}).sort("_id", -1).limit(limit).to_list()
        return [_to_experiment(d) for d in docs]

    async def of_sweep(self, sweep_id: str) -> list[Experiment]:
        """In the order they were queued (the grid's order)."""
        docs = await self._collection.find({"sweep_id": sweep_id}).sort("_id", 1).limit(TABLE_LIMIT).to_list()
        return [_to_experiment(d) for d in docs]

    async def started(self, experiment_id: str, *, base_sha: str, baseline: ResultsSnapshot) -> Experiment | None:
        """QUEUED -> RUNNING, with what the copy was made from; None when it is not QUEUED any more."""
        doc = await self._collection.find_one_and_update(
            {"_id": parse_object_id(experiment_id, resource="experiment"), "state": ExperimentState.QUEUED.value},
            {
                "$set": {
                    "state": ExperimentState.RUNNING.value,
                    "started_at": datetime.now(UTC),
                    "base_sha": base_sha,
                    "baseline": baseline.to_dict(),
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else _to_experiment(doc)

    async def finish(
        self,
        experiment_id: str,
        *,
        state: ExperimentState,
        error: str | None,
        exp_ref: str | None = None,
        exp_rev: str | None = None,
    ) -> Experiment | None:
        """The final state, once: None when it had one already."""
        unfinished = [ExperimentState.QUEUED.value, ExperimentState.RUNNING.value]
        doc = await self._collection.find_one_and_update(
            {"_id": parse_object_id(experiment_id, resource="experiment"), "state": {"$in": unfinished}},
            {
                "$set": {
                    "state": state.value,
                    "finished_at": datetime.now(UTC),
                    "error": error,
                    "exp_ref": exp_ref,
                    "exp_rev": exp_rev,
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else _to_experiment(doc)

    async def delete(self, experiment_id: str) -> None:
        await self._collection.delete_one({"_id": parse_object_id(experiment_id, resource="experiment")})

    async def delete_many(self, experiment_ids: list[str]) -> int:
        ids = [parse_object_id(i, resource="experiment") for i in experiment_ids]
        result = await self._collection.delete_many({"_id": {"$in": ids}})
        return result.deleted_count

    async def delete_for_project(self, project_id: str) -> int:
        result = await self._collection.delete_many({"project_id": project_id})
        return result.deleted_count
