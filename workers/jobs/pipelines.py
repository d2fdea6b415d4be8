"""Writing, removing and inspecting one pipeline (one dvc.yaml) of a workspace."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dvc.lock import LockError

from app.domain.errors import Conflict, InvalidInput, Issue, NotFound, TemplatedPipeline, WorkspaceBusy
from app.domain.known_state import known_at, plan_while_running, status_while_running
from app.domain.pipelines import Pipeline, PipelineSource, StageOutcome, StageSpec
from app.domain.runs import Run
from app.jobs_protocol import JobPayload, ok
from app.workspace_lock import run_holding
from workers import dvcops
from workers.context import WorkerResources, resources_of
from workers.environments.preparation import planned_environment
from workers.environments.store import EnvironmentStore
from workers.jobs.common import answers_domain_errors, report_from
from workers.locks import workspace_lock, workspace_lock_name
from workers.runs.planner import with_planned_environment
from workers.snapshots import FileSnapshot, WriteIntent, pending_intents


@asynccontextmanager
async def reading(resources: WorkerResources, project_id: str) -> AsyncIterator[None]:
    """Reads wait behind writes, but not behind a run.

    While a run holds the workspace, its stages are separate DVC processes that take DVC's own
    repository lock only while they record results; a read takes that lock too, so it sees a
    consistent workspace without waiting for the whole run.
    """
    if await running_run(resources, project_id) is not None:
        yield
        return
    async with workspace_lock(resources.redis, project_id, wait_seconds=resources.settings.workspace_read_wait_seconds):
        yield


async def running_run(resources: WorkerResources, project_id: str) -> Run | None:
    """The run holding the workspace, if one does (its id is the lock's value)."""
    run_id = run_holding(await resources.redis.get(workspace_lock_name(project_id)))
    if run_id is None:
        return None
    try:
        return await resources.runs.get(run_id)
    except NotFound:
        return None


async def settle_interrupted_writes(resources: WorkerResources, project_id: str, root: Path) -> None:
    """Finish what a killed worker left: keep a write whose document was stored, undo any other."""
    for entry, intent in await asyncio.to_thread(pending_intents, root):
        stored = await resources.pipelines.find_by_name(project_id=project_id, name=intent.pipeline_name)
        if stored is None or stored.version < intent.version_after:
            logger.warning("undoing an interrupted write of pipeline %r in %s", intent.pipeline_name, project_id)
            await asyncio.to_thread(intent.snapshot.restore)
        entry.unlink(missing_ok=True)


@functools.cache
def warm_repos() -> dvcops.WarmRepos:
    """This worker process's open DVC Repos, one per recently used workspace.

    Process-wide because arq hands every job a copy of the worker's context, so a cache added to it
    by a job is gone for the next one. Its natural home is WorkerResources, opened and closed with the
    worker (workers/context.py).
    """
    return dvcops.WarmRepos()


def api_pipeline_path(name: str) -> str:
    return f"pipelines/{name}/dvc.yaml"


logger = logging.getLogger(__name__)


def lock_path_for(pipeline_path: str) -> str:
    """DVC keeps a dvc.yaml's lock entries in the dvc.lock beside it."""
    folder = pipeline_path.rpartition("/")[0]
    return f"{folder}/dvc.lock" if folder else "dvc.lock"


def _outcomes(stages: list[StageSpec], issues: list[Issue]) -> list[StageOutcome]:
    errors: dict[str, list[str]] = {}
    for issue in issues:
        if issue.stage is not None:
            errors.setdefault(issue.stage, []).append(issue.message)
    return [
        StageOutcome(
            name=s.name,
            ok=s.name not in errors,
            error="; ".join(errors[s.name]) if s.name in errors else None,
        )
        for s in stages
    ]


def _stages_to_write(stages: list[StageSpec], issues: list[Issue], *, allow_partial: bool) -> list[StageSpec]:
    """The stages a request may write, or InvalidInput when it may write none of them.

    By default a request is all-or-nothing. With ``allow_partial`` (seed 000's behaviour) a stage that
    fails its own checks is left out and the others are written; problems of the pipeline as a whole
    (a cycle, duplicated outputs across stages) still refuse the request.
    """
    if not stages:
        raise InvalidInput([Issue(path="stages", message="a pipeline needs at least one stage")])
    if not issues:
        return stages
    pipeline_wide = [i for i in issues if i.stage is None]
    if pipeline_wide or not allow_partial:
        raise InvalidInput(issues)
    failed = {i.stage for i in issues}
    kept = [s for s in stages if s.name not in failed]
    if not kept:
        raise InvalidInput(issues, "every stage failed its checks; nothing was written")
    return kept


async def _write(
    resources: WorkerResources, root: Path, path: str, stages: list[StageSpec], *, allow_partial: bool
) -> tuple[list[StageSpec], list[StageOutcome]]:
    issues = await asyncio.to_thread(dvcops.check_pipeline, root, path, stages)
    kept = _stages_to_write(stages, issues, allow_partial=allow_partial)
    if len(kept) != len(stages):
        # Leaving stages out can itself break the rest (a dep on a dropped stage's output is fine,
        # but re-check so that what we write is exactly what DVC accepts).
        remaining = await asyncio.to_thread(dvcops.check_pipeline, root, path, kept)
        if remaining:
            raise InvalidInput(issues + remaining)
    await asyncio.to_thread(dvcops.write_pipeline, root, path, kept)
    return kept, _outcomes(stages, issues)


@answers_domain_errors
async def apply_pipeline(
    ctx: dict[str, Any],
    project_id: str,
    name: str,
    description: str | None,
    stages: list[dict[str, Any]],
    pipeline_id: str | None,
    expected_version: int | None,
    allow_partial: bool,
) -> JobPayload:
    """Create (``pipeline_id`` None) or replace the stage set of a pipeline: file and document together."""
    resources = resources_of(ctx)
    root = resources.workspace(project_id)
    specs = [StageSpec.from_dict(s) for s in stages]
    async with workspace_lock(
        resources.redis, project_id, wait_seconds=resources.settings.workspace_write_wait_seconds
    ):
        await settle_interrupted_writes(resources, project_id, root)
        existing: Pipeline | None = None
        if pipeline_id is None:
            path = api_pipeline_path(name)
            if await resources.pipelines.find_by_name(project_id=project_id, name=name) is not None:
                raise Conflict(f"a pipeline named {name!r} already exists in this project")
            if (root / path).exists():
                raise Conflict(f"{path} already exists in the workspace")
        else:
            existing = await resources.pipelines.get(pipeline_id)
            path = existing.path
            _check_version(existing, expected_version)
            # Written stage by stage, a templated file would come out expanded: refuse before anything else.
            if (root / path).is_file():
                constructs = await asyncio.to_thread(dvcops.templating_constructs, root / path)
                if constructs:
                    raise TemplatedPipeline(path, constructs)

        snapshot = await asyncio.to_thread(FileSnapshot.take, root, [path, lock_path_for(path)])
        intent = WriteIntent(name, 1 if existing is None else existing.version + 1, snapshot)
        journal = await asyncio.to_thread(intent.save)
        try:
            written, outcomes = await _write(resources, root, path, specs, allow_partial=allow_partial)
            # What was written is exactly the stage set _write had DVC check (with no issue left): checking the
            # file again would load the workspace with DVC a second time to find the same answer.
            validation = report_from([])
            if existing is None:
                pipeline = await resources.pipelines.insert(
                    project_id=project_id,
                    name=name,
                    path=path,
                    description=description,
                    source=PipelineSource.API,
                    stages=written,
                    validation=validation,
                )
            else:
                pipeline = await resources.pipelines.replace_stages(
                    pipeline_id=existing.id,
                    expected_version=existing.version,
                    stages=written,
                    description=description if description is not None else existing.description,
                    validation=validation,
                )
        except BaseException:
            # Nothing half-done: the workspace goes back to what it was before this request.
            await asyncio.to_thread(snapshot.restore)
            raise
        finally:
            journal.unlink(missing_ok=True)
    return ok(
        pipeline_id=pipeline.id,
        outcomes=[{"name": o.name, "ok": o.ok, "error": o.error} for o in outcomes],
        validation=validation.to_dict(),
    )


def _check_version(existing: Pipeline, expected_version: int | None) -> None:
    if expected_version is not None and existing.version != expected_version:
        raise Conflict(
            f"pipeline {existing.name!r} is at version {existing.version}, not {expected_version}: "
            "it was changed by someone else; reload it and apply your change again"
        )


@answers_domain_errors
async def replace_pipeline_file(
    ctx: dict[str, Any],
    pipeline_id: str,
    expected_version: int,
    dvc_yaml: str,
    params_path: str | None,
    params_content: str | None,
) -> JobPayload:
    """Make ``dvc_yaml`` the pipeline's whole dvc.yaml (and ``params_content`` the file at ``params_path``).

    All or nothing: DVC checks the text first; then the files are written (journaled, as any pipeline
    write) and loaded by DVC with the rest of the workspace; if DVC finds an issue, or the document
    changed meanwhile, the workspace goes back to what it was. The stages are then listed again as DVC
    reads them, lock entries of stages that are gone are dropped, and the document gets the new version.
    """
    resources = resources_of(ctx)
    existing = await resources.pipelines.get(pipeline_id)
    root = resources.workspace(existing.project_id)
    path = existing.path
    files = {path: dvc_yaml}
    if params_path is not None:
        problem = dvcops.params_path_problem(root, params_path)
        if problem:
            raise InvalidInput([Issue(path="params.path", message=problem)])
        files[params_path] = params_content or ""
    await asyncio.to_thread(dvcops.require_text_accepted, path, dvc_yaml)
    async with workspace_lock(
        resources.redis, existing.project_id, wait_seconds=resources.settings.workspace_write_wait_seconds
    ):
        await settle_interrupted_writes(resources, existing.project_id, root)
        existing = await resources.pipelines.get(pipeline_id)
        _check_version(existing, expected_version)
        snapshot = await asyncio.to_thread(FileSnapshot.take, root, [*dict.fromkeys([*files, lock_path_for(path)])])
        intent = WriteIntent(existing.name, existing.version + 1, snapshot)
        journal = await asyncio.to_thread(intent.save)
        try:
            await asyncio.to_thread(dvcops.write_texts, root, files)
            issues = await asyncio.to_thread(dvcops.check_pipeline_file, root, path)
            if issues:
                raise InvalidInput(
                    issues, f"DVC does not accept the new {path}; nothing was changed: " + _listed(issues)
                )
            stages = await asyncio.to_thread(dvcops.read_pipeline, root, path)
            await asyncio.to_thread(dvcops.prune_lock_entries, root, path, {s.name for s in stages})
            validation = report_from([])
            pipeline = await resources.pipelines.replace_stages(
                pipeline_id=existing.id,
                expected_version=existing.version,
                stages=stages,
                description=existing.description,
                validation=validation,
            )
        except BaseException:
            await asyncio.to_thread(snapshot.restore)
            raise
        finally:
            journal.unlink(missing_ok=True)
    return ok(
        pipeline_id=pipeline.id,
        outcomes=[{"name": s.name, "ok": True, "error": None} for s in stages],
        validation=validation.to_dict(),
    )


def _listed(issues: list[Issue]) -> str:
    return "; ".join(f"{i.path}: {i.message}" for i in issues[:5])


@answers_domain_errors
async def delete_pipeline(ctx: dict[str, Any], pipeline_id: str) -> JobPayload:
    resources = resources_of(ctx)
    pipeline = await resources.pipelines.get(pipeline_id)
    root = resources.workspace(pipeline.project_id)
    async with workspace_lock(
        resources.redis, pipeline.project_id, wait_seconds=resources.settings.workspace_write_wait_seconds
    ):
        await settle_interrupted_writes(resources, pipeline.project_id, root)
        removed: list[str] = []
        if (root / pipeline.path).exists():
            removed = await asyncio.to_thread(dvcops.remove_pipeline, root, pipeline.path)
        await resources.pipelines.delete(pipeline_id)
    return ok(removed_stages=removed, path=pipeline.path, name=pipeline.name)


@answers_domain_errors
async def validate_pipeline(ctx: dict[str, Any], pipeline_id: str) -> JobPayload:
    resources = resources_of(ctx)
    pipeline = await resources.pipelines.get(pipeline_id)
    root = resources.workspace(pipeline.project_id)
    # No workspace lock: this only reads files that writers replace atomically, so it never waits
    # behind a run (executePipeline validates while another run of the project may hold the workspace).
    if not (root / pipeline.path).exists():
        issues = [Issue(path="path", message=f"{pipeline.path} is missing from the workspace")]
    else:
        # The file as DVC loads it: the naming rule for stages typed into the API does not apply to names
        # DVC generated (foreach/matrix) or wrote in a cloned repository.
        issues = await asyncio.to_thread(dvcops.check_pipeline_file, root, pipeline.path)
        if not issues:
            on_disk = await asyncio.to_thread(dvcops.read_pipeline, root, pipeline.path)
            if [s.name for s in on_disk] != [s.name for s in pipeline.stages]:
                issues.append(Issue(path="stages", message=f"{pipeline.path} no longer holds the stages stored for it"))
    report = report_from(issues)
    await resources.pipelines.set_validation(pipeline_id, report)
    return ok(validation=report.to_dict())


@answers_domain_errors
async def pipeline_status(ctx: dict[str, Any], pipeline_id: str) -> JobPayload:
    resources = resources_of(ctx)
    pipeline = await resources.pipelines.get(pipeline_id)
    root = resources.workspace(pipeline.project_id)
    run = await running_run(resources, pipeline.project_id)
    if run is not None:
        # Answer at once from what is known, rather than queue behind the run's stages for DVC's lock.
        known = await resources.pipelines.last_status(pipeline_id)
        stages = status_while_running(pipeline, run, known[0] if known else [])
        checked_at = known_at(pipeline, run, known[1] if known else None, datetime.now(UTC))
        return ok(stages=[s.to_dict() for s in stages], checked_at=checked_at, stale=True)
    try:
        async with workspace_lock(
            resources.redis, pipeline.project_id, wait_seconds=resources.settings.workspace_read_wait_seconds
        ):
            statuses = await asyncio.to_thread(dvcops.pipeline_status, root, pipeline.path, warm_repos())
    except (WorkspaceBusy, LockError):
        # A read never fails on a busy workspace when there is something known to answer with.
        known = await resources.pipelines.last_status(pipeline_id)
        if known is None:
            raise
        stages, checked_at = known
        return ok(stages=[s.to_dict() for s in stages], checked_at=checked_at, stale=True)
    checked_at = datetime.now(UTC)
    await resources.pipelines.set_last_status(pipeline_id, statuses, checked_at)
    return ok(stages=[s.to_dict() for s in statuses], checked_at=checked_at, stale=False)


@answers_domain_errors
async def dry_run_pipeline(
    ctx: dict[str, Any], pipeline_id: str, force: bool, targets: list[str], downstream: bool, single_item: bool = False
) -> JobPayload:
    resources = resources_of(ctx)
    pipeline = await resources.pipelines.get(pipeline_id)
    root = resources.workspace(pipeline.project_id)
    run = await running_run(resources, pipeline.project_id)
    if run is not None:
        known = await resources.pipelines.last_status(pipeline_id)
        plan = plan_while_running(
            pipeline, run, known[0] if known else [], force=force, targets=tuple(targets), single_item=single_item
        )
        return ok(plan=plan.to_dict())
    async with workspace_lock(
        resources.redis, pipeline.project_id, wait_seconds=resources.settings.workspace_read_wait_seconds
    ):
        plan = await asyncio.to_thread(
            dvcops.dry_run_plan,
            root,
            pipeline.path,
            force=force,
            targets=targets,
            downstream=downstream,
            single_item=single_item,
            repos=warm_repos(),
        )
        # A run of this plan executes the project's environment step first: the plan shows it the same way.
        project = await resources.projects.get(pipeline.project_id)
        store = EnvironmentStore(resources.settings.environments_root)
        environment = await planned_environment(store, root, project.requirements_path)
    if environment is not None:
        plan = with_planned_environment(plan, environment[0], built=environment[1])
    return ok(plan=plan.to_dict())


@answers_domain_errors
async def pipeline_dag(ctx: dict[str, Any], pipeline_id: str) -> JobPayload:
    resources = resources_of(ctx)
    pipeline = await resources.pipelines.get(pipeline_id)
    root = resources.workspace(pipeline.project_id)
    async with reading(resources, pipeline.project_id):
        dag = await asyncio.to_thread(dvcops.pipeline_dag, root, pipeline.path)
    return ok(dag=dag.to_dict())
