"""Runs: start, cancel, list, read logs. Execution itself happens in a worker."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.domain.errors import Conflict, InvalidInput, Issue, NotFound
from app.domain.pages import Page
from app.domain.pipelines import Pipeline, StageSpec
from app.domain.runs import (
    CANCELLED_BY_REQUEST,
    EventType,
    LogChunk,
    Run,
    RunEvent,
    RunOptions,
    RunState,
    StageRun,
    StageRunState,
    Trigger,
)
from app.domain.users import Role
from app.events.publisher import announce_run, record_event
from app.events.recent import recent_events_after
from app.jobs import JobDispatcher
from app.repositories.events import EventRepository
from app.repositories.runs import RunRepository
from app.services.access import Access
from app.services.pipelines import PipelineService, check_selection
from app.services.run_settlement import settle_run
from app.services.workspace_changes import changed_since
from app.settings import Settings

MAX_TIMEOUT_SECONDS = 7 * 24 * 3600
MAX_PARALLEL = 64
# cancelRun gives the worker this long to stop a running run's stages and end it itself (it usually takes a few
# tens of milliseconds), then ends the run itself: its job may be gone or wedged. It answers within CANCEL_SECONDS.
CANCEL_WORKER_SECONDS = 1.0
CANCEL_SECONDS = 1.8
CANCEL_POLL_SECONDS = 0.05
CANCEL_RETRY_SECONDS = 0.01


# Stored events are read this many at a time.
EVENT_PAGE = 500


def run_job_id(run_id: str) -> str:
    return f"run:{run_id}"


@dataclass(frozen=True, slots=True)
class LogPage:
    stage: str
    offset: int
    text: str
    next_offset: int
    complete: bool
    """True when the stage has finished and ``next_offset`` is the end of its log."""


def _check_options(options: RunOptions, stages: list[StageSpec]) -> None:
    issues = check_selection(options.targets, options.single_item, stages, prefix="options.")
    if not 0 < options.timeout_seconds <= MAX_TIMEOUT_SECONDS:
        issues.append(Issue(path="options.timeoutSeconds", message=f"must be between 1 and {MAX_TIMEOUT_SECONDS}"))
    if not 0 <= options.max_parallel <= MAX_PARALLEL:
        issues.append(Issue(path="options.maxParallel", message=f"must be between 0 (CPUs) and {MAX_PARALLEL}"))
    if issues:
        raise InvalidInput(issues)


@dataclass(frozen=True, slots=True)
class RunService:
    access: Access
    pipeline_service: PipelineService
    runs: RunRepository
    events: EventRepository
    jobs: JobDispatcher
    redis: Redis
    settings: Settings

    async def get(self, *, caller: str, run_id: str, needs: Role = Role.VIEWER) -> Run:
        run = await self.runs.get(run_id)
        try:
            await self.access.project(caller=caller, project_id=run.project_id, needs=needs)
        except NotFound:
            raise NotFound("run", run_id) from None
        return run

    async def list_page(
        self,
        *,
        caller: str,
        project_id: str | None,
        pipeline_id: str | None,
        state: RunState | None,
        first: int,
        after: str | None,
    ) -> Page[Run]:
        if pipeline_id is not None:
            pipeline = await self.pipeline_service.get(caller=caller, pipeline_id=pipeline_id)
            project_ids = [pipeline.project_id]
        elif project_id is not None:
            project = await self.access.project(caller=caller, project_id=project_id, needs=Role.VIEWER)
            project_ids = [project.id]
        else:
            project_ids = await self.access.projects.ids_of(caller)
        return await self.runs.list_page(
            project_ids=project_ids, pipeline_id=pipeline_id, state=state, first=first, after=after
        )

    async def execute(
        self,
        *,
        caller: str,
        pipeline_id: str,
        options: RunOptions,
        trigger: Trigger = Trigger.API,
        retry_of: str | None = None,
    ) -> Run:
        pipeline = await self.pipeline_service.pipelines.get(pipeline_id)
        # Whether the stored validation still holds is learnt while access is checked; it reveals nothing by itself.
        still_valid, allowed = await asyncio.gather(
            self._still_valid(pipeline),
            self.access.project(caller=caller, project_id=pipeline.project_id, needs=Role.EDITOR),
            return_exceptions=True,
        )
        if isinstance(allowed, NotFound):
            raise NotFound("pipeline", pipeline_id) from None  # as if it did not exist, like PipelineService.get
        if isinstance(allowed, BaseException):
            raise allowed
        if isinstance(still_valid, BaseException):
            raise still_valid
        _check_options(options, pipeline.stages)
        if not still_valid:
            report = await self.pipeline_service.validate(caller=caller, pipeline_id=pipeline.id)
            if not report.valid:
                raise InvalidInput(report.issues, "the pipeline is invalid; nothing was queued")
        run = await self.runs.create(
            project_id=pipeline.project_id,
            pipeline_id=pipeline.id,
            pipeline_name=pipeline.name,
            options=options,
            triggered_by=caller,
            trigger=trigger,
            retry_of=retry_of,
            stages=[StageRun(name=s.name, command=s.cmd, state=StageRunState.PENDING) for s in pipeline.stages],
        )
        # The job names the project, so the worker takes the workspace without reading the run first.
        outcomes = await asyncio.gather(
            self.jobs.submit(
                "execute_run",
                run.id,
                project_id=run.project_id,
                queue_name=self.settings.runs_queue_name,
                job_id=run_job_id(run.id),
            ),
            announce_run(
                self.redis, run_id=run.id, state=run.state.value, project_id=run.project_id, pipeline_id=run.pipeline_id
            ),
            return_exceptions=True,  # both settle before an error is raised: none is left unobserved
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                if isinstance(outcomes[0], BaseException):
                    # No job was queued: a run left QUEUED would be picked up later although the caller was told
                    # that nothing was changed.
                    await self.runs.withdraw(run.id)
                raise outcome
        return run

    async def _still_valid(self, pipeline: Pipeline) -> bool:
        """Whether the stored validation still holds: it found no issue, and no file it could have read changed
        since (a worker's validation takes a DVC job, most of this mutation's time otherwise)."""
        stored = pipeline.validation
        if stored is None or not stored.valid:
            return False
        root = self.settings.workspace_root / pipeline.project_id
        return not await asyncio.to_thread(changed_since, root, stored.checked_at)

    async def retry(self, *, caller: str, run_id: str) -> Run:
        previous = await self.get(caller=caller, run_id=run_id, needs=Role.EDITOR)
        if not previous.state.finished:
            raise Conflict(f"the run is still {previous.state.value}; retry it once it has finished")
        if previous.trigger == Trigger.EXPERIMENT:
            # Retried here it would run in the workspace, without the experiment's overrides.
            raise Conflict("this run is an experiment's: run the experiment again with runExperiment")
        return await self.execute(
            caller=caller,
            pipeline_id=previous.pipeline_id,
            options=previous.options,
            trigger=Trigger.RETRY,
            retry_of=previous.id,
        )

    async def cancel(self, *, caller: str, run_id: str) -> Run:
        """Cancel a queued run at once, or a running one within CANCEL_SECONDS: by its worker (which stops its
        stages), or else here, whether its worker is gone, wedged or only slow (a live worker then finds the run
        settled and stops; it cannot overwrite the final state)."""
        run = await self.get(caller=caller, run_id=run_id, needs=Role.EDITOR)
        started = time.monotonic()
        if run.state.finished:
            raise Conflict(f"the run already finished ({run.state.value})")
        if run.state == RunState.QUEUED:
            cancelled = await self._cancel_queued(run)
            if cancelled is not None:
                return cancelled
        # Recorded first: it is how the job tells this abort from its worker stopping, and what it finds should the
        # abort miss it (a job queued again under another id).
        await self.runs.request_cancel(run.id)
        with contextlib.suppress(RedisError):
            await self.jobs.abort(queue_name=self.settings.runs_queue_name, job_id=run_job_id(run.id))
        run = await self._wait_finished(run.id, until=started + CANCEL_WORKER_SECONDS)
        while not run.state.finished and time.monotonic() < started + CANCEL_SECONDS:
            # The run is read last, just before the guarded write: a worker recording meanwhile makes it miss less.
            numbered = await self.events.last_seq(run.id)
            run = await self.runs.get(run.id)
            if run.state.finished:
                break
            settled = await settle_run(
                runs=self.runs,
                events=self.events,
                pipelines=self.pipeline_service.pipelines,
                redis=self.redis,
                run=run,
                state=RunState.CANCELLED,
                error=CANCELLED_BY_REQUEST,
                running_to=StageRunState.CANCELLED,
                seen_seq=run.last_seq,
                numbered_through=numbered,
            )
            if settled is not None:
                return settled
            # The worker recorded something since we read the run (or ended it): look again.
            await asyncio.sleep(CANCEL_RETRY_SECONDS)
        return run

    async def _cancel_queued(self, run: Run) -> Run | None:
        """Cancel a run no worker has started; None when a worker started it meanwhile."""
        now = datetime.now(UTC)
        seq = run.last_seq + 1
        cancelled = await self.runs.transition(
            run.id,
            from_states=(RunState.QUEUED,),
            to_state=RunState.CANCELLED,
            seq=seq,
            stages=[StageRun(name=s.name, command=s.command, state=StageRunState.NOT_RUN) for s in run.stages],
            finished_at=now,
            error="cancelled before it started",
            cancel_requested=True,
        )
        if cancelled is None:
            return None
        # Its job stays queued (arq's keys are arq's): when a worker takes it, it finds the run no longer QUEUED.
        event = RunEvent(
            run_id=run.id,
            seq=seq,
            type=EventType.RUN_STATE,
            at=now,
            run_state=RunState.CANCELLED,
            message="cancelled before it started",
        )
        await record_event(self.events, self.redis, event, project_id=run.project_id, pipeline_id=run.pipeline_id)
        return cancelled

    async def _wait_finished(self, run_id: str, *, until: float) -> Run:
        while True:
            run = await self.runs.get(run_id)
            if run.state.finished or time.monotonic() >= until:
                return run
            await asyncio.sleep(CANCEL_POLL_SECONDS)

    async def stage_log(self, *, caller: str, run_id: str, stage: str, offset: int, limit_bytes: int) -> LogPage:
        run = await self.get(caller=caller, run_id=run_id)
        stage_run = next((s for s in run.stages if s.name == stage), None)
        if stage_run is None:
            raise InvalidInput([Issue(path="stage", message=f"the run has no stage named {stage!r}")])
        if offset < 0:
            raise InvalidInput([Issue(path="offset", message="offset cannot be negative")])
        chunks, end = await self.events.log_window(
            run.id, stage=stage, offset=offset, limit_bytes=limit_bytes, bucketed=run.events_bucketed
        )
        return log_page(stage, offset, limit_bytes, chunks, end=end, finished=stage_run.state.finished)

    async def events_after(self, run: Run, seq: int, *, seen: int = 0) -> list[RunEvent]:
        """The next stored events after ``seq``, in order: all of them from the run's recent messages in Redis when
        those hold every one (app.events.recent), else one page (EVENT_PAGE) from MongoDB. Fewer than EVENT_PAGE:
        nothing more was stored when they were read; a caller wanting the rest asks again after the last one."""
        with contextlib.suppress(RedisError):
            recent = await recent_events_after(self.redis, run.id, seq)
            if recent is not None:
                return recent
        exists = max(run.last_seq, seen)  # numbers known to be given: the run's last as read, or one seen live
        return await self.events.after(run.id, seq=seq, limit=EVENT_PAGE, bucketed=run.events_bucketed, exists=exists)


def _is_continuation(byte: int) -> bool:
    return byte & 0xC0 == 0x80


def log_page(
    stage: str, offset: int, limit_bytes: int, chunks: list[LogChunk], *, end: int | None, finished: bool
) -> LogPage:
    """The bytes of the log from ``offset``, at most ``limit_bytes`` of them, cut at UTF-8 character boundaries.

    Offsets count bytes, so a client resumes exactly where its last page ended (``next_offset``). The text is
    characters, so a page never splits one: an ``offset`` inside a multi-byte character starts the page at that
    character's first byte (the page's ``offset`` says where it starts), and a page ends before a character that
    would not fit, unless that character is the first, which then comes whole (a page always makes progress).
    ``complete`` only when the stage has finished and the page reaches the end of its log (``end``; None: the end lies
    past ``chunks``).
    """
    if not chunks:
        reached = end is not None and offset >= end
        return LogPage(stage=stage, offset=offset, text="", next_offset=offset, complete=finished and reached)
    base = chunks[0].offset
    data = b"".join(c.text.encode() for c in chunks)
    begin = max(0, offset - base)
    while begin > 0 and begin < len(data) and _is_continuation(data[begin]):
        begin -= 1
    stop = min(begin + max(1, limit_bytes), len(data))
    while begin < stop < len(data) and _is_continuation(data[stop]):
        stop -= 1
    if stop == begin and begin < len(data):  # the first character is longer than the limit
        stop = begin + 1
        while stop < len(data) and _is_continuation(data[stop]):
            stop += 1
    next_offset = base + stop
    return LogPage(
        stage=stage,
        offset=base + begin,
        text=data[begin:stop].decode(),
        next_offset=next_offset,
        complete=finished and end is not None and next_offset >= end,
    )
