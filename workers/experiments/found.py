"""Storing the experiments DVC made in a project's repository (workers.experiments.importing finds them)."""

from __future__ import annotations

import asyncio
import logging

from bson import ObjectId

from app.domain.errors import WorkspaceError
from app.domain.experiments import Experiment, ExperimentSource, ExperimentState
from app.domain.pipelines import Pipeline
from workers.context import WorkerResources
from workers.experiments.importing import FoundExperiment, fetch_experiment_refs, found_experiments

logger = logging.getLogger(__name__)

ROOT_PIPELINE = "dvc.yaml"
MAX_PIPELINES = 1000


async def import_found(
    resources: WorkerResources, project_id: str, *, created_by: str, remote: str | None
) -> tuple[list[str], str | None]:
    """Fetch ``refs/exps`` from ``remote`` (None: do not fetch), then store the experiments not stored yet, under the
    project's top pipeline (DVC's experiments are of the whole repository); their ids, and why some were not."""
    root = resources.workspace(project_id)
    notes = []
    if remote is not None:
        try:
            await asyncio.to_thread(fetch_experiment_refs, root, remote)
        except WorkspaceError as unreachable:  # the experiments already here are still listed
            notes.append(f"could not fetch experiments from {remote}: {unreachable.message}")
    pipeline = await _home(resources, project_id)
    if pipeline is None:
        return [], "the project has no pipeline to list DVC's experiments under"
    known = await resources.experiments.exp_refs(project_id)
    found = [f for f in await asyncio.to_thread(found_experiments, root) if f.ref not in known]
    ids, taken = [], []
    for experiment in found:
        stored = _experiment_of(experiment, pipeline, created_by=created_by)
        if await resources.experiment_states.found(stored):
            ids.append(stored.id)
        else:
            taken.append(experiment.name)
    if taken:
        notes.append(f"experiments named like ones already listed were left out: {', '.join(taken)}")
    return ids, "; ".join(notes) or None


async def _home(resources: WorkerResources, project_id: str) -> Pipeline | None:
    """The pipeline of the repository's top dvc.yaml, or else the first one found."""
    pipelines = (await resources.pipelines.list_page(project_id=project_id, first=MAX_PIPELINES, after=None)).items
    ordered = sorted(pipelines, key=lambda p: (p.path != ROOT_PIPELINE, p.path))
    return ordered[0] if ordered else None


def _experiment_of(found: FoundExperiment, pipeline: Pipeline, *, created_by: str) -> Experiment:
    return Experiment(
        id=str(ObjectId()),
        project_id=pipeline.project_id,
        pipeline_id=pipeline.id,
        pipeline_name=pipeline.name,
        name=found.name,
        base_rev=found.baseline_sha,
        set_params=found.changed_params,
        state=ExperimentState.SUCCEEDED,
        run_id=None,
        created_by=created_by,
        created_at=found.committed_at,
        finished_at=found.committed_at,
        base_sha=found.baseline_sha,
        exp_ref=found.ref,
        exp_rev=found.rev,
        baseline=found.baseline,
        source=ExperimentSource.DVC,
        results=found.results,
    )
