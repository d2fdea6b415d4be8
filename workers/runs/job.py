"""The arq job that executes one run, and the cron job that fails runs whose worker vanished."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from arq import Retry
from arq.constants import in_progress_key_prefix
from pymongo.errors import DuplicateKeyError
from redis.asyncio import Redis
from redis.asyncio.lock import Lock

from app.domain.errors import DomainError, NotFound
from app.domain.projects import ResourceLimits
from app.domain.runs import EventType, Run, RunEvent, RunState, StageRun, StageRunState
from app.events import channels
from app.events.publisher import record_event
from workers.context import WorkerResources, resources_of
from workers.execution import StageSession, open_session, stage_environment
from workers.locks import LOCK_LEASE_SECONDS, workspace_lock_name
from workers.runs.outputs import OutputHashes, changed_outputs, output_hashes
from workers.runs.planner import RunPlan, plan_run
from workers.runs.recorder import RunRecorder
from workers.runs.scheduler import Scheduler

logger = logging.getLogger(__name__)

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
BUSY_WORKSPACE_RETRY_SECONDS = 0.5
# Longer than the API takes between creating a run and enqueueing it.
REQUEUE_AFTER_SECONDS = 10.0


def run_lock(redis: Redis, project_id: str) -> Lock:
    return redis.lock(workspace_lock_name(project_id), timeout=LOCK_LEASE_SECONDS, blocking=False, thread_local=False)


def run_lock_token(run_id: str) -> str:
    """The lock's value names the run, so the reaper can free the workspace of a run whose worker died."""
    return f"run:{run_id}"


async def execute_run(ctx: dict[str, Any], run_id: str, project_id: str | None = None) -> str:
    """Run ``run_id``: RUNNING is recorded as soon as the workspace is ours, before any other work.

    The API names the project in the job, so the workspace lock and the project are taken together without reading
    the run first; a job queued again from MongoDB (requeue_orphaned_runs) names only the run.
    """
    resources = resources_of(ctx)
    if project_id is None:
        queued = await resources.runs.get(run_id)
        if queued.state != RunState.QUEUED:
            return f"run is {queued.state.value}; nothing to do"
        project_id = queued.project_id
    lock = run_lock(resources.redis, project_id)
    acquiring: Awaitable[bool] = lock.acquire(token=run_lock_token(run_id))
    acquired, project = await asyncio.gather(acquiring, resources.projects.get(project_id), return_exceptions=True)
    if isinstance(acquired, BaseException):
        raise acquired
    if not acquired:
        waiting = await resources.runs.get(run_id)
        if waiting.state != RunState.QUEUED:
            return f"run is {waiting.state.value}; nothing to do"
        # One run per workspace at a time: come back shortly, without holding a worker slot meanwhile.
        raise Retry(defer=BUSY_WORKSPACE_RETRY_SECONDS)
    try:
        if isinstance(project, NotFound):
            return "the project was deleted"
        if isinstance(project, BaseException):
            raise project
        recorder = await RunRecorder.start(
            run_id, worker=WORKER_ID, runs=resources.runs, events=resources.events, redis=resources.redis
        )
        if recorder is None:
            return "run is no longer queued (cancelled, or started elsewhere); nothing to do"
        recorder.log_limit = project.limits.log_bytes
        recorder.server_root = str(resources.settings.workspace_root)
        heartbeat = asyncio.create_task(_heartbeat(resources, run_id, lock))
        try:
            final = await _execute(resources, recorder, project.limits)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        await resources.pipelines.record_run(final)
        return final.state.value
    finally:
        with contextlib.suppress(Exception):
            await lock.release()


def stage_limits(limits: ResourceLimits) -> dict[str, int]:
    return {
        "cpu": limits.cpu_seconds,
        "as": limits.memory_bytes,
        "nofile": limits.open_files,
        "fsize": limits.file_size_bytes,
    }


async def _execute(resources: WorkerResources, recorder: RunRecorder, limits: ResourceLimits) -> Run:
    run = recorder.run
    root = resources.workspace(run.project_id)
    try:
        pipeline = await resources.pipelines.get(run.pipeline_id)
    except DomainError as refused:
        return await recorder.finish(RunState.FAILED, error=refused.message, outputs_changed=[])
    # The stage session reads the pipeline's files while the plan is made (both before any stage runs).
    opening = asyncio.create_task(open_session(root, [pipeline.path], stage_environment()))
    session: StageSession | None = None
    try:
        try:
            before = await asyncio.to_thread(output_hashes, root)
            plan = await asyncio.to_thread(plan_run, root, pipeline.path, run.options)
        except DomainError as refused:
            return await recorder.finish(RunState.FAILED, error=refused.message, outputs_changed=[])
        session = await opening
        return await _run_plan(resources, recorder, limits, root, plan, session, before)
    finally:
        if session is None:
            opening.cancel()
            with contextlib.suppress(BaseException):
                session = await opening
        if session is not None:
            session.close()


async def _run_plan(
    resources: WorkerResources,
    recorder: RunRecorder,
    limits: ResourceLimits,
    root: Path,
    plan: RunPlan,
    session: StageSession | None,
    before: OutputHashes,
) -> Run:
    run = recorder.run
    commands = {s.name: s.command for s in run.stages}
    await recorder.set_stages(
        [StageRun(name=n, command=commands.get(n, ""), state=StageRunState.PENDING) for n in plan.up_to_date]
        + [StageRun(name=s.name, command=s.command, state=StageRunState.PENDING) for s in plan.steps]
    )
    for name in plan.up_to_date:
        await recorder.stage(name, StageRunState.SKIPPED, skip_reason="up to date")

    scheduler = Scheduler(
        recorder=recorder,
        root=root,
        steps=plan.steps,
        force=run.options.force,
        keep_going=run.options.keep_going,
        max_parallel=run.options.max_parallel or os.cpu_count() or 1,
        limits=stage_limits(limits),
        session=session,
    )
    work = asyncio.create_task(scheduler.run())
    cancel = asyncio.create_task(_cancel_requested(resources, run.id))
    state, error = RunState.SUCCEEDED, None
    try:
        done, _ = await asyncio.wait(
            {work, cancel}, timeout=run.options.timeout_seconds, return_when=asyncio.FIRST_COMPLETED
        )
        if work not in done:
            cancelled = cancel in done
            state = RunState.CANCELLED if cancelled else RunState.TIMED_OUT
            error = "cancelled by request" if cancelled else f"timed out after {run.options.timeout_seconds:g} s"
            await scheduler.abort(error)
        outcome = await work
    except asyncio.CancelledError:
        # The worker is shutting down: stop the stages and say so, rather than leave the run RUNNING.
        await asyncio.shield(_abandon(scheduler, work, recorder))
        raise
    finally:
        cancel.cancel()
    if state == RunState.SUCCEEDED and outcome.failed:
        state, error = RunState.FAILED, f"stage {outcome.failed[0]!r} failed"
    after = await asyncio.to_thread(output_hashes, root)
    return await recorder.finish(state, error=error, outputs_changed=changed_outputs(before, after))


async def _abandon(scheduler: Scheduler, work: asyncio.Task[Any], recorder: RunRecorder) -> None:
    await scheduler.abort("the worker stopped during the run")
    with contextlib.suppress(BaseException):
        await work
    await recorder.finish(RunState.FAILED, error="the worker stopped during the run", outputs_changed=[])


async def _cancel_requested(resources: WorkerResources, run_id: str) -> None:
    """Returns when someone asked to cancel: told on Redis, or seen in MongoDB (should the message be lost)."""
    pubsub = resources.redis.pubsub()
    await pubsub.subscribe(channels.run_control(run_id))
    try:
        while not await resources.runs.should_stop(run_id):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                return
    finally:
        with contextlib.suppress(Exception):
            await pubsub.aclose()  # type: ignore[no-untyped-call]


async def _heartbeat(resources: WorkerResources, run_id: str, lock: Lock) -> None:
    while True:
        await asyncio.sleep(resources.settings.heartbeat_seconds)
        with contextlib.suppress(Exception):
            await resources.runs.heartbeat(run_id, worker=WORKER_ID)
            await lock.reacquire()


async def requeue_orphaned_runs(ctx: dict[str, Any]) -> int:
    """MongoDB is the source of truth: a QUEUED run whose job Redis lost (a restart without its data)
    is queued again. arq ignores an enqueue whose job id it still knows, so this never duplicates a job.

    An attempt on a QUEUED run takes milliseconds (it starts the run or retries later), so a job of a
    run queued this long that arq still marks in progress was held by a worker that died: the mark is
    lifted and a live worker picks the job up.
    """
    resources = resources_of(ctx)
    moment = datetime.now(UTC) - timedelta(seconds=REQUEUE_AFTER_SECONDS)
    requeued = 0
    for run_id in await resources.runs.queued_before(moment):
        if await resources.redis.delete(in_progress_key_prefix + f"run:{run_id}"):
            logger.warning("run %s: the worker holding its job died; released the job", run_id)
        job = await resources.redis.enqueue_job(
            "execute_run", run_id, _queue_name=resources.settings.runs_queue_name, _job_id=f"run:{run_id}"
        )
        if job is not None:
            requeued += 1
            logger.warning("run %s was queued in MongoDB but not in Redis; queued it again", run_id)
    return requeued


async def reap_lost_runs(ctx: dict[str, Any]) -> int:
    """Fail RUNNING runs whose worker stopped reporting (killed, or its machine gone); free their workspace."""
    resources = resources_of(ctx)
    silent_since = datetime.now(UTC) - timedelta(seconds=resources.settings.lost_after_seconds)
    # This process's own runs are alive by definition, however late their heartbeat (a starved event loop).
    lost = [r for r in await resources.runs.lost_runs(silent_since=silent_since) if r.worker != WORKER_ID]
    for run in lost:
        await _fail_lost(resources, run, silent_since=silent_since)
    return len(lost)


async def _fail_lost(resources: WorkerResources, run: Run, *, silent_since: datetime) -> None:
    error = "worker lost"
    settled = [_lost(s, error) for s in run.stages]
    claimed = await resources.runs.claim_lost(
        run.id, silent_since=silent_since, error=error, stages=settled, seen_seq=run.last_seq
    )
    if claimed is None:
        return  # its worker reported in, or recorded something, meanwhile: the next round looks again
    # A worker that was only slow may still be numbering events: take the next free number.
    seq = max(claimed.last_seq, await resources.events.last_seq(run.id)) + 1
    for _ in range(100):
        event = RunEvent(
            run_id=run.id,
            seq=seq,
            type=EventType.RUN_STATE,
            at=datetime.now(UTC),
            run_state=RunState.FAILED,
            message=error,
        )
        try:
            await record_event(
                resources.events, resources.redis, event, project_id=run.project_id, pipeline_id=run.pipeline_id
            )
            break
        except DuplicateKeyError:
            seq += 1
    await resources.runs.set_fields(run.id, last_seq=seq)
    await resources.pipelines.record_run(await resources.runs.get(run.id))
    logger.warning("run %s: worker lost, marked FAILED", run.id)
    lock_name = workspace_lock_name(run.project_id)
    if await resources.redis.get(lock_name) in (run_lock_token(run.id).encode(), run_lock_token(run.id)):
        await resources.redis.delete(lock_name)


def _lost(stage: StageRun, error: str) -> StageRun:
    if stage.state == StageRunState.RUNNING:
        return replace(stage, state=StageRunState.FAILED, error=error)
    if stage.state == StageRunState.PENDING:
        return replace(stage, state=StageRunState.NOT_RUN, error=error)
    return stage
