"""The arq jobs of experiments: check one before it is queued, and execute one.

Executing: the workspace lock is taken only while the copy is set up (a git worktree, the working tree's changes,
DVC's cache shared); the experiment's run then executes in the copy through the run machinery (workers.runs.job),
so its stages, logs, states, cancel and updates are a run's. A run that succeeds is saved as a DVC experiment.
The copy is removed however the experiment ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from arq import Retry

from app.domain.errors import Conflict, DomainError, NotFound
from app.domain.experiments import Experiment, ExperimentState, ParamOverride
from app.domain.runs import RunState
from app.jobs_protocol import JobPayload, ok
from workers.context import WorkerResources, resources_of
from workers.dvcops.results import read_results
from workers.experiments import overrides
from workers.experiments.copies import COPIES_FOLDER, copy_path, make_copy, remove_copy, resolve_base
from workers.experiments.found import import_found
from workers.experiments.promotion import apply_experiment as apply_files
from workers.experiments.promotion import branch_experiment as make_branch
from workers.experiments.promotion import commit_experiment as make_commit
from workers.experiments.promotion import remove_experiments as remove_refs
from workers.experiments.saving import SAVE_TIMEOUT_SECONDS, SavedExperiment, save_experiment
from workers.experiments.slots import sweep_slot
from workers.jobs.common import answers_domain_errors
from workers.jobs.history import AUTHOR_EMAIL_DOMAIN
from workers.jobs.pipelines import reading
from workers.locks import workspace_lock
from workers.runs.job import BUSY_WORKSPACE_RETRY_SECONDS, claim_and_run, run_lock

logger = logging.getLogger(__name__)

# DVC's experiment save moves refs every worktree shares (refs/exps/exec/*): one save per project at a time.
SAVE_LOCK_SECONDS = 120.0

T = TypeVar("T")

_executing_experiments: set[str] = set()
"""The experiments this process is executing: their copies are never stale."""


@answers_domain_errors
async def check_experiment(
    ctx: dict[str, Any], project_id: str, base_rev: str | None, set_params: list[dict[str, str]]
) -> JobPayload:
    """Whether the base exists and DVC accepts every override on the base's params files (tried on copies)."""
    resources = resources_of(ctx)
    workspace = resources.workspace(project_id)
    parsed = [ParamOverride.from_dict(o) for o in set_params]

    def check() -> str:
        sha = resolve_base(workspace, base_rev)
        overrides.check(workspace, sha, base_rev, parsed)
        return sha

    async with reading(resources, project_id):
        base_sha = await asyncio.to_thread(check)
    return ok(base_sha=base_sha)


@answers_domain_errors
async def branch_experiment(ctx: dict[str, Any], experiment_id: str, branch: str) -> JobPayload:
    """``dvc exp branch`` of a saved experiment in its workspace, under the workspace lock (a ref is written)."""
    resources = resources_of(ctx)
    experiment = await resources.experiments.get(experiment_id)
    if experiment.exp_ref is None or experiment.exp_rev is None:
        raise Conflict(f"experiment {experiment.name!r} was not saved as a DVC experiment; nothing to branch")
    workspace = resources.workspace(experiment.project_id)
    async with workspace_lock(
        resources.redis, experiment.project_id, wait_seconds=resources.settings.workspace_write_wait_seconds
    ):
        made = await asyncio.to_thread(make_branch, workspace, experiment.exp_ref, experiment.exp_rev, branch)
    return ok(branch=made.name, sha=made.sha)


@answers_domain_errors
async def apply_experiment(ctx: dict[str, Any], experiment_id: str, force: bool) -> JobPayload:
    """``dvc exp apply`` of a saved experiment in its workspace, under the workspace lock (files are written)."""
    resources = resources_of(ctx)
    experiment = await resources.experiments.get(experiment_id)
    if experiment.exp_ref is None or experiment.exp_rev is None:
        raise Conflict(f"experiment {experiment.name!r} was not saved as a DVC experiment; nothing to apply")
    workspace = resources.workspace(experiment.project_id)
    async with workspace_lock(
        resources.redis, experiment.project_id, wait_seconds=resources.settings.workspace_write_wait_seconds
    ):
        changed = await asyncio.to_thread(apply_files, workspace, experiment.exp_ref, experiment.exp_rev, force=force)
    return ok(changed=changed)


@answers_domain_errors
async def commit_experiment(
    ctx: dict[str, Any], experiment_id: str, message: str, user_id: str, force: bool
) -> JobPayload:
    """``dvc exp apply`` of a saved experiment then a commit of its files on the workspace's current branch, as the
    user ``user_id``, under the workspace lock."""
    resources = resources_of(ctx)
    experiment = await resources.experiments.get(experiment_id)
    if experiment.exp_ref is None or experiment.exp_rev is None:
        raise Conflict(f"experiment {experiment.name!r} was not saved as a DVC experiment; nothing to commit")
    user = await resources.users.get_user(user_id)
    workspace = resources.workspace(experiment.project_id)
    async with workspace_lock(
        resources.redis, experiment.project_id, wait_seconds=resources.settings.workspace_write_wait_seconds
    ):
        made = await asyncio.to_thread(
            make_commit,
            workspace,
            experiment.exp_ref,
            experiment.exp_rev,
            message=message,
            author_name=user.name,
            author_email=f"{user.name}@{AUTHOR_EMAIL_DOMAIN}",
            force=force,
        )
    return ok(sha=made.sha, branch=made.branch, files=made.files)


@answers_domain_errors
async def import_experiments(ctx: dict[str, Any], project_id: str, user_id: str) -> JobPayload:
    """The experiments DVC made in the repository (``dvc exp push``ed to its origin, or run in the workspace) that
    the service does not list yet, fetched and stored, under the workspace lock (refs are added)."""
    resources = resources_of(ctx)
    async with workspace_lock(
        resources.redis, project_id, wait_seconds=resources.settings.workspace_write_wait_seconds
    ):
        ids, note = await import_found(resources, project_id, created_by=user_id, remote="origin")
    return ok(ids=ids, note=note)


@answers_domain_errors
async def remove_experiments(ctx: dict[str, Any], project_id: str, exp_refs: list[str]) -> JobPayload:
    """``dvc exp remove`` of experiments of one project, under the workspace lock (refs are deleted)."""
    resources = resources_of(ctx)
    workspace = resources.workspace(project_id)
    async with workspace_lock(
        resources.redis, project_id, wait_seconds=resources.settings.workspace_write_wait_seconds
    ):
        removed = await asyncio.to_thread(remove_refs, workspace, exp_refs)
    return ok(removed=removed)


async def execute_experiment(ctx: dict[str, Any], experiment_id: str) -> str:
    resources = resources_of(ctx)
    try:
        experiment = await resources.experiments.get(experiment_id)
    except NotFound:
        return "the experiment was removed"
    return await _execute(resources, experiment)


async def execute_experiment_of_run(ctx: dict[str, Any], run_id: str) -> str:
    """The experiment whose run this is (its job queued again from MongoDB by requeue_orphaned_runs)."""
    resources = resources_of(ctx)
    experiment = await resources.experiments.of_run(run_id)
    if experiment is None:
        return "the run's experiment was removed"
    return await _execute(resources, experiment)


async def _execute(resources: WorkerResources, experiment: Experiment) -> str:
    if experiment.state.finished:
        return f"experiment is {experiment.state.value}; nothing to do"
    run = await resources.runs.get(experiment.own_run)
    if run.state != RunState.QUEUED:
        return await _ended_without_us(resources, experiment)
    async with sweep_slot(resources.redis, experiment):
        _executing_experiments.add(experiment.id)
        try:
            return await _execute_queued(resources, experiment)
        finally:
            _executing_experiments.discard(experiment.id)


@dataclass(frozen=True)
class _Outcome:
    state: ExperimentState
    error: str | None
    message: str
    exp_ref: str | None = None
    exp_rev: str | None = None


async def _execute_queued(resources: WorkerResources, experiment: Experiment) -> str:
    lock = run_lock(resources.redis, experiment.project_id)
    if not await lock.acquire():
        raise Retry(defer=BUSY_WORKSPACE_RETRY_SECONDS)  # as a run: come back once the workspace is free
    workspace = resources.workspace(experiment.project_id)
    copy = copy_path(resources.settings.workspace_root, experiment.id)
    outcome: _Outcome | None = None
    try:
        try:
            project = await resources.projects.get(experiment.project_id)
        except NotFound:
            outcome = _Outcome(ExperimentState.FAILED, "project deleted", "the project was deleted")
            return outcome.message

        async def place() -> Path:
            try:
                base_sha = await _uninterrupted(make_copy, workspace, copy, experiment.base_rev)
            finally:
                with contextlib.suppress(Exception):
                    await lock.release()  # the copy is set up: the workspace is the user's again
            baseline = await _uninterrupted(read_results, copy, plots=False)
            await _uninterrupted(overrides.apply, copy, experiment.set_params)
            await resources.experiment_states.started(experiment.id, base_sha=base_sha, baseline=baseline)
            return copy

        final = await claim_and_run(resources, experiment.own_run, project, lock, place)
        if final is None:
            return await _ended_without_us(resources, experiment)
        if final.state != RunState.SUCCEEDED:
            outcome = _Outcome(ExperimentState.of_run(final.state), final.error, final.state.value)
            return outcome.message
        try:
            saved = await _save(resources, experiment, copy)
        except DomainError as refused:
            outcome = _Outcome(ExperimentState.FAILED, refused.message, "failed to save")
            return outcome.message
        outcome = _Outcome(ExperimentState.SUCCEEDED, None, "succeeded", exp_ref=saved.ref, exp_rev=saved.rev)
        return outcome.message
    finally:
        with contextlib.suppress(Exception):
            await lock.release()
        try:
            await asyncio.shield(asyncio.to_thread(remove_copy, workspace, copy))
        except Exception:
            logger.exception(
                "experiment %s: its copy could not be removed (remove_stale_copies tries again)", experiment.id
            )
        # Ended only once its copy is gone: whoever sees the experiment final finds no copy of it left behind.
        if outcome is not None:
            await resources.experiment_states.finish(
                experiment.id,
                state=outcome.state,
                error=outcome.error,
                exp_ref=outcome.exp_ref,
                exp_rev=outcome.exp_rev,
            )


async def _save(resources: WorkerResources, experiment: Experiment, copy: Path) -> SavedExperiment:
    lock = resources.redis.lock(
        f"experiment-save:{experiment.project_id}",
        timeout=SAVE_LOCK_SECONDS,
        blocking_timeout=SAVE_LOCK_SECONDS,
        thread_local=False,
    )
    async with lock:
        return await _uninterrupted(save_experiment, copy, experiment.name)


async def _ended_without_us(resources: WorkerResources, experiment: Experiment) -> str:
    """The run ended (or started) without this job: cancelled while queued, or another job has it."""
    run = await resources.runs.get(experiment.own_run)
    if run.state.finished:
        await resources.experiment_states.finish(
            experiment.id, state=ExperimentState.of_run(run.state), error=run.error
        )
    return f"run is {run.state.value}; nothing to do"


async def _uninterrupted(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``function`` in a thread, waited for to its end even when the job is cancelled meanwhile (the copy is then
    complete, or failed, before it is removed); the cancellation is passed on after."""
    work = asyncio.ensure_future(asyncio.to_thread(function, *args, **kwargs))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await work
        raise


async def remove_stale_copies(ctx: dict[str, Any]) -> int:
    """Remove copies whose experiment is over but which nobody removed: their worker died mid-experiment (the reaper
    then ended the run). A copy is kept while its experiment's run may still go on, or its job may still set it up.
    The experiment is given its run's final state (it would stay RUNNING otherwise)."""
    resources = resources_of(ctx)
    folder = resources.settings.workspace_root / COPIES_FOLDER
    names = await asyncio.to_thread(lambda: sorted(p.name for p in folder.iterdir()) if folder.is_dir() else [])
    removed = 0
    for name in names:
        if name in _executing_experiments:
            continue
        if not await _stale(resources, name):
            continue
        try:
            workspace: Path | None = resources.workspace((await resources.experiments.get(name)).project_id)
        except NotFound:
            workspace = None  # the project (and so the experiment) was deleted, its workspace with it
        await asyncio.to_thread(remove_copy, workspace, folder / name)
        logger.warning("removed the copy of experiment %s, left behind by a worker that stopped", name)
        removed += 1
    return removed


async def _stale(resources: WorkerResources, experiment_id: str) -> bool:
    """Whether nobody can be using the experiment's copy any more; a stale experiment gets its run's final state."""
    try:
        experiment = await resources.experiments.get(experiment_id)
        if experiment.state.finished:
            return True
        run = await resources.runs.get(experiment.own_run)
    except NotFound:
        return True
    if not run.state.finished:
        return False
    if run.state == RunState.SUCCEEDED:
        # Being saved by its job, maybe in another worker process: stale only once saving would have given up.
        ended = run.finished_at or datetime.now(UTC)
        if datetime.now(UTC) - ended < timedelta(seconds=SAVE_LOCK_SECONDS + SAVE_TIMEOUT_SECONDS):
            return False
    await resources.experiment_states.finish(
        experiment.id, state=ExperimentState.of_run(run.state), error=run.error or "its worker stopped before saving it"
    )
    return True
