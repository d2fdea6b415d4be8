"""The arq job that executes one run, and the cron jobs that end runs whose worker vanished or requeue lost jobs.

Once a job has claimed its run (QUEUED -> RUNNING), the run ends in a final state whatever fails: an exception
anywhere under ``_execute`` settles it FAILED through app.services.run_settlement, which needs neither the recorder
(it may be what failed) nor the stage processes (they are stopped first).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from arq import Retry
from arq.jobs import Job, JobStatus
from redis.asyncio import Redis
from redis.asyncio.lock import Lock

from app.domain.errors import DomainError, NotFound
from app.domain.projects import Project, ResourceLimits
from app.domain.runs import CANCELLED_BY_REQUEST, ENVIRONMENT_STEP, Run, RunState, StageRun, StageRunState, Trigger
from app.services.run_settlement import ensure_final_event, settle_run
from app.services.runs import run_job_id
from app.workspace_lock import run_lock_token
from workers import sandbox
from workers.context import WorkerResources, resources_of
from workers.environments import EnvironmentStore, RunEnvironment, prepare_environment
from workers.environments.preparation import serving_run
from workers.execution import StageSession, open_session, stage_environment
from workers.jobs.results import capture_results
from workers.locks import LOCK_LEASE_SECONDS, workspace_lock_name
from workers.runs import faults
from workers.runs.outputs import changed_outputs, output_hashes
from workers.runs.planner import RunPlan, plan_run, with_environment_step
from workers.runs.recorder import RunRecorder
from workers.runs.scheduler import Scheduler

logger = logging.getLogger(__name__)

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
BUSY_WORKSPACE_RETRY_SECONDS = 0.5
# Longer than the API takes between creating a run and enqueueing it.
REQUEUE_AFTER_SECONDS = 10.0
# A RUNNING run whose arq job is over (or unknown) this long after it started was left behind by its job.
JOB_GONE_GRACE_SECONDS = 5.0
# How often a run checks, besides cancelRun's abort of its job, whether it was cancelled or settled by someone else.
STOP_POLL_SECONDS = 1.0
# A run of another worker whose job arq does not know is taken for alive while heard from this recently: arq's keys
# go with a Redis restart that lost its data, while the job itself runs on.
UNKNOWN_JOB_ALIVE_HEARTBEATS = 3
WORKER_STOPPED = "the worker stopped during the run"
WORKER_LOST = "worker lost"
JOB_ENDED = "the run's job ended without ending it"
RUN_FAILED = "the run failed in the worker"


_executing: set[str] = set()
"""The runs this process is executing: the reaper knows its own without asking arq."""


def run_lock(redis: Redis, project_id: str) -> Lock:
    return redis.lock(workspace_lock_name(project_id), timeout=LOCK_LEASE_SECONDS, blocking=False, thread_local=False)


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
        if queued.trigger == Trigger.EXPERIMENT:
            # Queued again from MongoDB (requeue_orphaned_runs): an experiment's run runs in its own copy.
            from workers.experiments.job import execute_experiment_of_run  # the experiment job imports this module

            return await execute_experiment_of_run(ctx, run_id)
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
        final = await claim_and_run(resources, run_id, project, lock)
        if final is None:
            return "run is no longer queued (cancelled, or started elsewhere); nothing to do"
        return final.state.value
    finally:
        with contextlib.suppress(Exception):
            await lock.release()


RunPlace = Callable[[], Awaitable[Path]]
"""Sets up the folder a run executes in instead of its workspace (an experiment's copy), once the run is claimed."""


async def claim_and_run(
    resources: WorkerResources, run_id: str, project: Project, lock: Lock, place: RunPlace | None = None
) -> Run | None:
    """Claim the QUEUED run (QUEUED -> RUNNING) and execute it to a final state; None when it was not QUEUED any
    more. The heartbeat renews ``lock`` while the caller holds it (a run in a ``place`` releases it once set up)."""
    _executing.add(run_id)  # before the claim: the reaper never sees this run RUNNING and not ours
    try:
        recorder = await RunRecorder.claim(
            run_id, worker=WORKER_ID, runs=resources.runs, events=resources.events, redis=resources.redis
        )
        if recorder is None:
            return None
        recorder.log_limit = project.limits.log_bytes
        recorder.server_root = str(resources.settings.workspace_root)
        heartbeat = asyncio.create_task(_heartbeat(resources, recorder, lock))
        try:
            return await _run_to_the_end(
                resources, recorder, project.limits, project.requirements_path, place, network=project.network_allowed
            )
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
    finally:
        _executing.discard(run_id)


async def _run_to_the_end(
    resources: WorkerResources,
    recorder: RunRecorder,
    limits: ResourceLimits,
    requirements_path: str | None,
    place: RunPlace | None = None,
    *,
    network: bool = False,
) -> Run:
    """Execute the claimed run; whatever fails, it ends in a final state (unless MongoDB itself is gone: then the
    reaper settles it once this job is over)."""
    try:
        await recorder.announce()
        finished = await _execute(resources, recorder, limits, requirements_path, place, network=network)
    except asyncio.CancelledError:
        if await _aborted(resources, recorder.run.id):
            # cancelRun aborted the job (arq's Job.abort) before the stages started: the run ends CANCELLED.
            return await _settle_cancelled(resources, recorder)
        # The worker is shutting down: say so, rather than leave the run RUNNING.
        await asyncio.shield(_settle_failed(resources, recorder, WORKER_STOPPED))
        raise
    except Exception as error:
        logger.exception("run %s failed in the worker", recorder.run.id)
        return await _settle_failed(resources, recorder, f"{RUN_FAILED}: {_describe(error)}")
    if finished is None:
        # Settled by someone else meanwhile (cancelRun, the reaper): that final state stands.
        return await resources.runs.get(recorder.run.id)
    if place is None:  # a run elsewhere (an experiment's) is not the pipeline's last run in its workspace
        with contextlib.suppress(Exception):
            await resources.pipelines.record_run(finished)
    return finished


async def _settle(resources: WorkerResources, run: Run, **how: Any) -> Run | None:
    """app.services.run_settlement.settle_run with this worker's repositories."""
    return await settle_run(
        runs=resources.runs,
        events=resources.events,
        pipelines=resources.pipelines,
        redis=resources.redis,
        run=run,
        **how,
    )


async def _settle_failed(resources: WorkerResources, recorder: RunRecorder, error: str) -> Run:
    run = recorder.snapshot()
    # The heartbeat writes the same document: not while this write is made (see RunRecorder.heartbeat).
    async with recorder.writing_alone():
        settled = await _settle(
            resources,
            run,
            state=RunState.FAILED,
            error=recorder.without_server_paths(error) or error,
            numbered_through=run.last_seq,
        )
    if settled is not None:
        return settled
    # Settled already: by someone else, or by this run's own last write, whose event may be what failed.
    return await ensure_final_event(
        runs=resources.runs,
        events=resources.events,
        pipelines=resources.pipelines,
        redis=resources.redis,
        run_id=run.id,
    )


async def _aborted(resources: WorkerResources, run_id: str) -> bool:
    """Whether the CancelledError just caught is cancelRun's abort of the job, not the worker stopping (both cancel
    the job's task): cancelRun records the request in MongoDB before it aborts. When it is, the cancellation is
    taken back (``Task.uncancel``) so the job can end its run and return."""
    try:
        requested = await asyncio.shield(resources.runs.should_stop(run_id))
    except Exception:
        return False
    task = asyncio.current_task()
    if requested and task is not None:
        task.uncancel()
    return requested


async def _settle_cancelled(resources: WorkerResources, recorder: RunRecorder) -> Run:
    run = recorder.snapshot()
    async with recorder.writing_alone():  # not while the heartbeat writes the document (RunRecorder.heartbeat)
        settled = await _settle(
            resources,
            run,
            state=RunState.CANCELLED,
            error=CANCELLED_BY_REQUEST,
            running_to=StageRunState.CANCELLED,
            numbered_through=run.last_seq,
        )
    return settled if settled is not None else await resources.runs.get(run.id)


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:300]}" if text else type(error).__name__


def stage_limits(limits: ResourceLimits) -> dict[str, int]:
    return {
        "cpu": limits.cpu_seconds,
        "as": limits.memory_bytes,
        "nofile": limits.open_files,
        "fsize": limits.file_size_bytes,
    }


async def _execute(
    resources: WorkerResources,
    recorder: RunRecorder,
    limits: ResourceLimits,
    requirements_path: str | None,
    place: RunPlace | None,
    *,
    network: bool = False,
) -> Run | None:
    """The run from its plan to its final state; None when someone else settled it meanwhile.

    ``requirements_path``: the project's requirements file as its owner set it (None: requirements.txt, if any);
    ``place`` sets up the folder the run executes in instead of its workspace (an experiment's copy); ``network``:
    the project's owner allowed its stages a network (workers/sandbox/network.py).
    """
    run = recorder.run
    try:
        pipeline = await resources.pipelines.get(run.pipeline_id)
        root = resources.workspace(run.project_id) if place is None else await place()
    except DomainError as refused:
        return await recorder.finish(RunState.FAILED, error=refused.message, outputs_changed=[])
    refusal = (await asyncio.to_thread(sandbox.current)).refusal
    if refusal is not None:  # no sandbox, and no operator's STAGES_UNSANDBOXED: no stage command starts
        return await recorder.finish(RunState.FAILED, error=refusal, outputs_changed=[])
    # The stage session reads the pipeline's files while the plan is made (both before any stage runs).
    opening = asyncio.create_task(open_session(root, [pipeline.path], stage_environment()))
    session: StageSession | None = None
    try:
        try:
            before = await asyncio.to_thread(output_hashes, root)
            faults.inject(run.pipeline_name, "plan")
            plan = await asyncio.to_thread(plan_run, root, pipeline.path, run.options)
        except DomainError as refused:
            return await recorder.finish(RunState.FAILED, error=refused.message, outputs_changed=[])
        store = EnvironmentStore(resources.settings.environments_root)
        python = await prepare_environment(store, root, requirements_path)
        if python.has_step:
            plan = with_environment_step(plan, python.source)
        session = await opening
        faults.inject(run.pipeline_name, "session")
        await _record_plan(recorder, plan)
        faults.inject(run.pipeline_name, "before_first_stage")
        with serving_run(run.id, python.environment, store):
            state, error = await _run_stages(resources, recorder, limits, root, plan, session, python, network=network)
        faults.inject(run.pipeline_name, "end")
        after = await asyncio.to_thread(output_hashes, root)
        await capture_results(resources, recorder.run, state, root)  # results (and commit) before the final state
        return await recorder.finish(state, error=error, outputs_changed=changed_outputs(before, after))
    finally:
        if session is None:
            opening.cancel()
            with contextlib.suppress(BaseException):
                session = await opening
        if session is not None:
            session.close()


async def _record_plan(recorder: RunRecorder, plan: RunPlan) -> None:
    """The stages this run considers, all PENDING, then those DVC found up to date SKIPPED. The environment step
    is listed first, as it runs first; then the stages DVC skips, then the rest in the plan's order."""
    commands = {s.name: s.command for s in recorder.run.stages}
    first = [s for s in plan.steps if s.environment]
    rest = [s for s in plan.steps if not s.environment]
    await recorder.set_stages(
        [StageRun(name=s.name, command=s.command, state=StageRunState.PENDING) for s in first]
        + [StageRun(name=n, command=commands.get(n, ""), state=StageRunState.PENDING) for n in plan.up_to_date]
        + [StageRun(name=s.name, command=s.command, state=StageRunState.PENDING) for s in rest]
    )
    for name in plan.up_to_date:
        await recorder.stage(name, StageRunState.SKIPPED, skip_reason="up to date")


async def _run_stages(
    resources: WorkerResources,
    recorder: RunRecorder,
    limits: ResourceLimits,
    root: Path,
    plan: RunPlan,
    session: StageSession | None,
    python: RunEnvironment,
    *,
    network: bool = False,
) -> tuple[RunState, str | None]:
    """Run the plan's stages until they end, the run is cancelled or times out; the state the run ends in, and why.

    Every stage is stopped before this returns or raises, and every event of theirs is recorded.
    """
    run = recorder.run
    scheduler = Scheduler(
        recorder=recorder,
        root=root,
        steps=plan.steps,
        force=run.options.force,
        keep_going=run.options.keep_going,
        max_parallel=run.options.max_parallel or os.cpu_count() or 1,
        limits=stage_limits(limits),
        session=session,
        pipeline_name=run.pipeline_name,
        # The sandbox's prefix is made here, once for the run's stages (in a thread: the first run in a workspace
        # opens its files to the sandbox's user); the environment may be built only by the run's first step.
        env=await asyncio.to_thread(
            partial(
                stage_environment,
                workspace=root,
                python_environment=python.environment.root,
                python_home=python.environment.interpreter_home,
                network=network,
            )
        ),
        build_environment=python.start_step,
    )
    work = asyncio.create_task(scheduler.run())
    cancel = asyncio.create_task(_stop_requested(resources, run.id))
    state, error = RunState.SUCCEEDED, None
    try:
        try:
            done, _ = await asyncio.wait(
                {work, cancel}, timeout=run.options.timeout_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        except asyncio.CancelledError:
            if not await _aborted(resources, run.id):
                raise
            done = {cancel}  # cancelRun aborted the job: as if the request had been seen here
        if work not in done:
            cancelled = cancel in done
            state = RunState.CANCELLED if cancelled else RunState.TIMED_OUT
            error = CANCELLED_BY_REQUEST if cancelled else f"timed out after {run.options.timeout_seconds:g} s"
            await scheduler.abort(error)
        outcome = await work
    except BaseException as failure:
        # Whatever failed (the worker shutting down included): no stage keeps running, then the caller settles.
        reason = WORKER_STOPPED if isinstance(failure, asyncio.CancelledError) else RUN_FAILED
        await asyncio.shield(_stop(scheduler, work, reason))
        raise
    finally:
        cancel.cancel()
    if state == RunState.SUCCEEDED and outcome.failed:
        state, error = RunState.FAILED, f"stage {outcome.failed[0]!r} failed"
        if outcome.failed[0] == ENVIRONMENT_STEP:
            error = f"the project's Python environment could not be built from {python.source}"
    return state, error


async def _stop(scheduler: Scheduler, work: asyncio.Task[Any], reason: str) -> None:
    await scheduler.abort(reason, stage_state=StageRunState.FAILED)
    with contextlib.suppress(BaseException):
        await work


async def _stop_requested(resources: WorkerResources, run_id: str) -> None:
    """Returns when the run was cancelled or settled by someone else, as seen in MongoDB: the fallback of cancelRun's
    job abort (a job queued again has an id the abort does not name) and how a run learns the reaper or cancelRun
    settled it. A failing check is tried again: it is never taken for a cancel."""
    while True:
        try:
            if await resources.runs.should_stop(run_id):
                return
        except Exception:
            logger.warning("run %s: could not check for a cancel; trying again", run_id, exc_info=True)
        await asyncio.sleep(STOP_POLL_SECONDS)


async def _heartbeat(resources: WorkerResources, recorder: RunRecorder, lock: Lock) -> None:
    while True:
        await asyncio.sleep(resources.settings.heartbeat_seconds)
        with contextlib.suppress(Exception):
            await recorder.heartbeat(worker=WORKER_ID)
            await lock.reacquire()


# A QUEUED run's job held by workers that died is queued again under a new id, at most this many times.
REQUEUE_ATTEMPTS = 10


async def requeue_orphaned_runs(ctx: dict[str, Any]) -> int:
    """MongoDB is the source of truth: a QUEUED run whose job Redis lost (a restart without its data)
    is queued again. arq ignores an enqueue whose job id it still knows, so this never duplicates a job.

    An attempt on a QUEUED run takes milliseconds (it starts the run or retries later), so a job of a run queued this
    long that arq reports in progress was held by a worker that died. arq's keys are left to arq (its in-progress mark
    expires with the job's timeout): the run gets a job of its own again, under the next id of ``requeue_job_ids``.
    A stale job a worker takes later finds the run no longer QUEUED and does nothing.
    """
    resources = resources_of(ctx)
    moment = datetime.now(UTC) - timedelta(seconds=REQUEUE_AFTER_SECONDS)
    requeued = 0
    for run_id in await resources.runs.queued_before(moment):
        job_id = await _free_job_id(resources, run_id)
        if job_id is None:
            continue  # a job of the run is queued or deferred: a live worker takes it
        job = await resources.redis.enqueue_job(
            "execute_run", run_id, _queue_name=resources.settings.runs_queue_name, _job_id=job_id
        )
        if job is not None:
            requeued += 1
            logger.warning("run %s was queued in MongoDB but had no live job; queued it again as %s", run_id, job_id)
    return requeued


def requeue_job_ids(run_id: str) -> list[str]:
    """The ids a run's job may have: the API's, then one per requeue after a worker died holding the previous."""
    first = run_job_id(run_id)
    return [first, *(f"{first}:requeued:{n}" for n in range(1, REQUEUE_ATTEMPTS + 1))]


async def _free_job_id(resources: WorkerResources, run_id: str) -> str | None:
    """The first id of the run's jobs that arq does not know, if every earlier one is in progress (held by a worker
    that died, as the run is still QUEUED); None when one is queued, deferred or complete (as before: its job ran and
    left the run as it is), or all are used."""
    for job_id in requeue_job_ids(run_id):
        status = await Job(job_id, resources.redis, _queue_name=resources.settings.runs_queue_name).status()
        if status == JobStatus.not_found:
            return job_id
        if status != JobStatus.in_progress:
            return None
    logger.error("run %s: %d jobs were lost with their workers; not queued again", run_id, REQUEUE_ATTEMPTS)
    return None


async def reap_lost_runs(ctx: dict[str, Any]) -> int:
    """Fail RUNNING runs that nobody executes any more, and free their workspace: those whose worker stopped
    reporting (killed, or its machine gone); those whose job is over, whatever their heartbeat says (a job that
    ended without ending its run); and those whose job arq does not know, once their worker is silent for a few
    heartbeats (not at once: arq's keys go with a Redis restart that lost its data, while the job runs on)."""
    resources = resources_of(ctx)
    now = datetime.now(UTC)
    silent_since = now - timedelta(seconds=resources.settings.lost_after_seconds)
    # This process's own runs are alive by definition, however late their heartbeat (a starved event loop).
    silent = [r for r in await resources.runs.lost_runs(silent_since=silent_since) if r.worker != WORKER_ID]
    reaped = 0
    for run in silent:
        reaped += await _fail_lost(resources, run, WORKER_LOST, silent_since=silent_since)
    silent_ids = {r.id for r in silent}
    for run in await resources.runs.running_since(now - timedelta(seconds=JOB_GONE_GRACE_SECONDS)):
        if run.id not in silent_ids and (gone := await _job_gone(resources, run, now)) is not None:
            reaped += await _fail_lost(resources, run, gone, silent_since=None)
    return reaped


async def _job_gone(resources: WorkerResources, run: Run, now: datetime) -> str | None:
    """Why nobody executes the run any more, or None while its job may still run: this process knows its own runs;
    for another worker's, arq's status of the job says."""
    if run.worker == WORKER_ID:
        return None if run.id in _executing else JOB_ENDED
    status = await Job(run_job_id(run.id), resources.redis, _queue_name=resources.settings.runs_queue_name).status()
    if status == JobStatus.complete:
        return JOB_ENDED
    alive_window = timedelta(seconds=UNKNOWN_JOB_ALIVE_HEARTBEATS * resources.settings.heartbeat_seconds)
    if status == JobStatus.not_found and (run.heartbeat_at is None or run.heartbeat_at < now - alive_window):
        return WORKER_LOST
    return None


async def _fail_lost(resources: WorkerResources, run: Run, error: str, *, silent_since: datetime | None) -> int:
    # Only as the run was read (nothing recorded since) and, for a silent worker, while it is still silent.
    settled = await _settle(
        resources,
        run,
        state=RunState.FAILED,
        error=error,
        seen_seq=run.last_seq,
        silent_since=silent_since,
    )
    if settled is None:
        return 0  # its worker reported in, or recorded something, meanwhile: the next round looks again
    logger.warning("run %s: %s, marked FAILED", run.id, error)
    return 1
