"""Results of runs and of the workspace: the snapshot a run keeps when it ends, and reads on demand."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.domain.errors import InvalidInput, Issue
from app.domain.results import FileError, ResultKind, ResultsSnapshot
from app.domain.runs import Run, RunState
from app.jobs_protocol import JobPayload, ok
from workers.context import WorkerResources, resources_of
from workers.dvcops.results import diff_revisions, read_results
from workers.jobs.common import answers_domain_errors
from workers.jobs.history import commit_after_run
from workers.jobs.pipelines import reading

logger = logging.getLogger(__name__)

# Reading results must not hold a run's end for long: past this the run ends with the reason in its snapshot.
CAPTURE_SECONDS = 120.0


async def capture_results(resources: WorkerResources, run: Run, state: RunState, root: Path | None = None) -> None:
    """Store what DVC reads from ``root`` (default: the run's workspace; an experiment's copy) now as run ``run``'s
    results, then commit them if the run asked (option ``commit``). Called before the final state is recorded, so a
    client that sees it finds both. Never fails the run: a problem becomes an error of the snapshot, or the run's
    ``commit_note``."""
    try:
        snapshot = await asyncio.wait_for(
            asyncio.to_thread(read_results, root or resources.workspace(run.project_id)), CAPTURE_SECONDS
        )
    except TimeoutError:
        snapshot = _failed(f"DVC did not read the results within {CAPTURE_SECONDS:g} s")
    except Exception as error:
        logger.warning("run %s: reading its results failed", run.id, exc_info=True)
        snapshot = _failed(f"DVC could not read the results: {type(error).__name__}: {error}")
    try:
        await resources.results.save(
            run_id=run.id,
            project_id=run.project_id,
            pipeline_id=run.pipeline_id,
            read_at=datetime.now(UTC),
            snapshot=snapshot,
        )
    except Exception:
        logger.exception("run %s: storing its results failed", run.id)
    try:
        await commit_after_run(resources, run, state)
    except Exception:
        logger.exception("run %s: committing its results failed", run.id)


def _failed(message: str) -> ResultsSnapshot:
    return ResultsSnapshot(errors=[FileError(kind=kind, file="", message=message) for kind in ResultKind])


@answers_domain_errors
async def workspace_results(ctx: dict[str, Any], project_id: str) -> JobPayload:
    """Metrics and params of the workspace as it is now (``dvc metrics show``, params alike)."""
    resources = resources_of(ctx)
    async with reading(resources, project_id):
        snapshot = await asyncio.to_thread(read_results, resources.workspace(project_id), plots=False)
    return ok(snapshot=snapshot.to_dict())


@answers_domain_errors
async def revision_diff(ctx: dict[str, Any], project_id: str, kind: str, a: str, b: str, unchanged: bool) -> JobPayload:
    """``dvc metrics diff`` / ``dvc params diff`` between two revisions of the workspace."""
    resources = resources_of(ctx)
    try:
        chosen = ResultKind(kind)
    except ValueError:
        raise InvalidInput([Issue(path="kind", message=f"no result kind {kind!r}")]) from None
    async with reading(resources, project_id):
        diff = await asyncio.to_thread(
            diff_revisions, resources.workspace(project_id), chosen, a, b, unchanged=unchanged
        )
    return ok(
        a=diff.a, b=diff.b, entries=[e.to_dict() for e in diff.entries], errors=[e.to_dict() for e in diff.errors]
    )
