"""GraphQL types of runs, their stages, logs and live updates."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from app.domain import runs as domain
from app.domain.errors import NotFound
from app.domain.pages import Page
from app.services.run_updates import RunUpdate as DomainRunUpdate
from app.services.run_updates import RunUpdateBatch as DomainRunUpdateBatch
from app.services.runs import LogPage
from schema.context import Info
from schema.errors import NotFoundError, ValidationError
from schema.pagination import PageInfo, encode_cursor, page_info
from schema.shared_results import IdentityMemo, RendersOnce

if TYPE_CHECKING:
    from schema.pipelines.types import Pipeline
    from schema.projects.types import Project
    from schema.results.types import Plots, ResultEntries

DEFAULT_LOG_PAGE_BYTES = 64 * 1024
MAX_LOG_PAGE_BYTES = 1024 * 1024


@strawberry.enum(description="Where a run is in its life: QUEUED -> RUNNING -> one of the final states.")
class RunState(Enum):
    QUEUED = domain.RunState.QUEUED.value
    RUNNING = domain.RunState.RUNNING.value
    SUCCEEDED = domain.RunState.SUCCEEDED.value
    FAILED = domain.RunState.FAILED.value
    CANCELLED = domain.RunState.CANCELLED.value
    TIMED_OUT = domain.RunState.TIMED_OUT.value


@strawberry.enum(description="What happened to one stage in a run, taken from what actually ran.")
class StageRunState(Enum):
    PENDING = domain.StageRunState.PENDING.value
    SKIPPED = domain.StageRunState.SKIPPED.value
    RUNNING = domain.StageRunState.RUNNING.value
    SUCCEEDED = domain.StageRunState.SUCCEEDED.value
    FAILED = domain.StageRunState.FAILED.value
    CANCELLED = domain.StageRunState.CANCELLED.value
    NOT_RUN = domain.StageRunState.NOT_RUN.value


@strawberry.enum(description="How a run was started.")
class RunTrigger(Enum):
    API = domain.Trigger.API.value
    RETRY = domain.Trigger.RETRY.value
    EXPERIMENT = domain.Trigger.EXPERIMENT.value


@strawberry.enum(description="What a run update carries.")
class RunUpdateType(Enum):
    SNAPSHOT = "snapshot"
    RUN_STATE = domain.EventType.RUN_STATE.value
    STAGE_STATE = domain.EventType.STAGE_STATE.value
    LOG = domain.EventType.LOG.value


@strawberry.type(description="The options a run was started with.")
class RunOptions:
    force: bool = strawberry.field(description="Stages run even if up to date.")
    targets: list[str] = strawberry.field(description="Stages asked for (with their upstream); empty for all.")
    downstream: bool = strawberry.field(description="The targets and everything after them.")
    single_item: bool = strawberry.field(description="Only the targets, without their upstream.")
    keep_going: bool = strawberry.field(description="Independent branches go on after a failure.")
    timeout_seconds: float = strawberry.field(description="The run ends TIMED_OUT after this long.")
    max_parallel: int = strawberry.field(description="Stages at once; 0 means the worker's CPUs.")
    commit: bool = strawberry.field(description="A successful run commits its results.")

    @classmethod
    def from_domain(cls, options: domain.RunOptions) -> RunOptions:
        return cls(
            force=options.force,
            targets=list(options.targets),
            downstream=options.downstream,
            single_item=options.single_item,
            keep_going=options.keep_going,
            timeout_seconds=options.timeout_seconds,
            max_parallel=options.max_parallel,
            commit=options.commit,
        )


@strawberry.type(description="A page of a stage's log (stdout and stderr interleaved, as printed).")
class StageLog:
    stage: str = strawberry.field(description="The stage.")
    offset: int = strawberry.field(
        description="Byte offset where this page starts: the requested one, or the first byte of the multi-byte "
        "character it falls inside (a page never splits a character)."
    )
    text: str = strawberry.field(description="The log text.")
    next_offset: int = strawberry.field(description="Pass as `offset` for the next page, or to tail.")
    complete: bool = strawberry.field(description="The stage has finished and this page reaches its end.")

    @classmethod
    def from_domain(cls, page: LogPage) -> StageLog:
        return cls(
            stage=page.stage,
            offset=page.offset,
            text=page.text,
            next_offset=page.next_offset,
            complete=page.complete,
        )


StageLogResult = Annotated[StageLog | NotFoundError | ValidationError, strawberry.union("StageLogResult")]


@strawberry.type(description="One stage of a run.")
class StageRun:
    run_id: strawberry.Private[str]
    name: str = strawberry.field(description="The stage.")
    command: str = strawberry.field(description="Its command.")
    state: StageRunState = strawberry.field(description="What happened to it.")
    started_at: datetime | None = strawberry.field(description="When its command started.")
    finished_at: datetime | None = strawberry.field(description="When it ended.")
    duration_seconds: float | None = strawberry.field(description="finishedAt - startedAt.")
    exit_code: int | None = strawberry.field(description="Exit code of DVC's reproduction of the stage.")
    peak_memory_bytes: int | None = strawberry.field(description="Peak resident memory of its command.")
    cpu_seconds: float | None = strawberry.field(description="User + system CPU time of its command.")
    log_bytes: int = strawberry.field(description="Size of its log so far.")
    error: str | None = strawberry.field(description="What ended it, when it did not succeed.")
    skip_reason: str | None = strawberry.field(description="Why DVC skipped it.")

    @classmethod
    def from_domain(cls, run_id: str, stage: domain.StageRun) -> StageRun:
        return cls(
            run_id=run_id,
            name=stage.name,
            command=stage.command,
            state=StageRunState(stage.state.value),
            started_at=stage.started_at,
            finished_at=stage.finished_at,
            duration_seconds=stage.duration_seconds,
            exit_code=stage.exit_code,
            peak_memory_bytes=stage.peak_memory_bytes,
            cpu_seconds=stage.cpu_seconds,
            log_bytes=stage.log_bytes,
            error=stage.error,
            skip_reason=stage.skip_reason,
        )

    @strawberry.field(
        description="The stage's log from a byte offset, at most `limitBytes` bytes of it (ending before a character "
        "that would not fit, unless it is the first): page through it with `nextOffset`, or tail it."
    )
    async def log(self, info: Info, offset: int = 0, limit_bytes: int = DEFAULT_LOG_PAGE_BYTES) -> StageLogResult:
        page = await info.context.services.runs.stage_log(
            caller=info.context.caller,
            run_id=self.run_id,
            stage=self.name,
            offset=offset,
            limit_bytes=max(1, min(limit_bytes, MAX_LOG_PAGE_BYTES)),
        )
        return StageLog.from_domain(page)


@strawberry.type(description="How many stages ended in each state.")
class StageCounts:
    succeeded: int = strawberry.field(description="Ran and succeeded.")
    failed: int = strawberry.field(description="Ran and failed.")
    skipped: int = strawberry.field(description="Up to date: not run.")
    not_run: int = strawberry.field(description="Not started after an upstream failure or the run's end.")
    cancelled: int = strawberry.field(description="Stopped by a cancel or a timeout.")


@strawberry.type(description="One execution of a pipeline.")
class Run:
    id: strawberry.ID = strawberry.field(description="The run's id.")
    project_id: strawberry.ID = strawberry.field(description="Its project.")
    pipeline_id: strawberry.ID = strawberry.field(description="Its pipeline.")
    pipeline_name: str = strawberry.field(description="The pipeline's name when the run started.")
    state: RunState = strawberry.field(description="Where the run is.")
    options: RunOptions = strawberry.field(description="What it was asked to do.")
    triggered_by: str = strawberry.field(description="The user who started it.")
    trigger: RunTrigger = strawberry.field(description="How it was started.")
    retry_of: strawberry.ID | None = strawberry.field(description="The run this one retries.")
    created_at: datetime = strawberry.field(description="When it was queued.")
    started_at: datetime | None = strawberry.field(description="When a worker started it.")
    finished_at: datetime | None = strawberry.field(description="When it ended.")
    duration_seconds: float | None = strawberry.field(description="finishedAt - startedAt.")
    error: str | None = strawberry.field(description="What ended it, when it did not succeed.")
    outputs_changed: list[str] = strawberry.field(description="Outputs whose content changed, per dvc.lock.")
    stages: list[StageRun] = strawberry.field(description="Its stages, in execution order.")
    counts: StageCounts = strawberry.field(description="Stages per final state.")
    last_seq: int = strawberry.field(description="Sequence number of the last state change reflected here.")
    commit_sha: str | None = strawberry.field(description="The git commit of its results, once committed.")
    commit_note: str | None = strawberry.field(description="Why nothing was committed, when a commit was asked for.")

    @classmethod
    def from_domain(cls, run: domain.Run) -> Run:
        states = domain.StageRunState
        return cls(
            id=strawberry.ID(run.id),
            project_id=strawberry.ID(run.project_id),
            pipeline_id=strawberry.ID(run.pipeline_id),
            pipeline_name=run.pipeline_name,
            state=RunState(run.state.value),
            options=RunOptions.from_domain(run.options),
            triggered_by=run.triggered_by,
            trigger=RunTrigger(run.trigger.value),
            retry_of=strawberry.ID(run.retry_of) if run.retry_of else None,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            duration_seconds=run.duration_seconds,
            error=run.error,
            outputs_changed=run.outputs_changed,
            stages=[StageRun.from_domain(run.id, s) for s in run.stages],
            counts=StageCounts(
                succeeded=run.count(states.SUCCEEDED),
                failed=run.count(states.FAILED),
                skipped=run.count(states.SKIPPED),
                not_run=run.count(states.NOT_RUN),
                cancelled=run.count(states.CANCELLED),
            ),
            last_seq=run.last_seq,
            commit_sha=run.commit_sha,
            commit_note=run.commit_note,
        )

    @strawberry.field(description="Its metrics, as DVC read them when it ended; null before that.")
    async def metrics(self, info: Info) -> Annotated[ResultEntries, strawberry.lazy("schema.results.types")] | None:
        from app.domain.results import ResultKind
        from schema.results.types import ResultEntries

        results = await info.context.services.results.of_run(caller=info.context.caller, run_id=self.id)
        return (
            None
            if results is None
            else ResultEntries.from_domain(results.snapshot, ResultKind.METRICS, results.read_at)
        )

    @strawberry.field(description="Its params, as DVC read them when it ended; null before that.")
    async def params(self, info: Info) -> Annotated[ResultEntries, strawberry.lazy("schema.results.types")] | None:
        from app.domain.results import ResultKind
        from schema.results.types import ResultEntries

        results = await info.context.services.results.of_run(caller=info.context.caller, run_id=self.id)
        return (
            None if results is None else ResultEntries.from_domain(results.snapshot, ResultKind.PARAMS, results.read_at)
        )

    @strawberry.field(description="Its plots, rendered as `dvc plots show --json` does, when it ended; null before.")
    async def plots(self, info: Info) -> Annotated[Plots, strawberry.lazy("schema.results.types")] | None:
        from schema.results.types import Plots

        results = await info.context.services.results.of_run(caller=info.context.caller, run_id=self.id)
        return None if results is None else Plots.from_domain(results)

    @strawberry.field(description="Its pipeline; null once the pipeline has been deleted.")
    async def pipeline(self, info: Info) -> Annotated[Pipeline, strawberry.lazy("schema.pipelines.types")] | None:
        from schema.pipelines.types import Pipeline

        try:
            return Pipeline.from_domain(await info.context.loaders.pipelines.load(self.pipeline_id))
        except NotFound:
            return None

    @strawberry.field(description="Its project.")
    async def project(self, info: Info) -> Annotated[Project, strawberry.lazy("schema.projects.types")]:
        from schema.projects.types import Project

        return Project.from_domain(await info.context.loaders.projects.load(self.project_id))


@strawberry.type(description="One run in a page of runs.")
class RunEdge:
    cursor: str = strawberry.field(description="The position of this run in the list.")
    node: Run = strawberry.field(description="The run.")


@strawberry.type(description="A page of runs, newest first.")
class RunConnection:
    edges: list[RunEdge] = strawberry.field(description="The runs on this page.")
    page_info: PageInfo = strawberry.field(description="Where this page stands.")

    @classmethod
    def from_page(cls, page: Page[domain.Run]) -> RunConnection:
        edges = [RunEdge(cursor=encode_cursor(r.id), node=Run.from_domain(r)) for r in page.items]
        return cls(
            edges=edges,
            page_info=page_info([e.cursor for e in edges], has_next_page=page.has_next_page),
        )


@strawberry.type(description="A change in a run, numbered: the first update is a SNAPSHOT of the whole run.")
class RunUpdate(RendersOnce):
    seq: int = strawberry.field(description="Orders a run's updates; pass the last one seen as `after` to resume.")
    type: RunUpdateType = strawberry.field(description="What this update carries.")
    at: datetime | None = strawberry.field(description="When it happened (null for the snapshot).")
    run: Run | None = strawberry.field(description="The whole run (SNAPSHOT only).")
    run_state: RunState | None = strawberry.field(description="The run's new state (RUN_STATE).")
    stage: str | None = strawberry.field(description="The stage concerned (STAGE_STATE, LOG).")
    stage_state: StageRunState | None = strawberry.field(description="The stage's new state (STAGE_STATE).")
    text: str | None = strawberry.field(description="Log text (LOG).")
    offset: int | None = strawberry.field(description="Byte offset of `text` in the stage's log (LOG).")
    message: str | None = strawberry.field(description="An error or skip reason that came with the change.")

    @classmethod
    def from_domain(cls, update: DomainRunUpdate) -> RunUpdate:
        if update.event is None:
            assert update.run is not None
            return cls(
                seq=update.seq,
                type=RunUpdateType.SNAPSHOT,
                at=None,
                run=Run.from_domain(update.run),
                run_state=RunState(update.run.state.value),
                stage=None,
                stage_state=None,
                text=None,
                offset=None,
                message=update.run.error,
            )
        return _event_updates.get(update.event, cls.from_event)

    @classmethod
    def from_event(cls, event: domain.RunEvent) -> RunUpdate:
        return cls(
            seq=event.seq,
            type=RunUpdateType(event.type.value),
            at=event.at,
            run=None,
            run_state=RunState(event.run_state.value) if event.run_state else None,
            stage=event.stage,
            stage_state=StageRunState(event.stage_state.value) if event.stage_state else None,
            text=event.text,
            offset=event.offset,
            message=event.message,
        )


# Every subscriber of a run receives the same event objects; their GraphQL objects are made once too, so that
# schema.shared_results can render each one once for all of them.
_event_updates: IdentityMemo[domain.RunEvent, RunUpdate] = IdentityMemo(4096)


@strawberry.type(description="Consecutive updates of a run: the first batch holds its SNAPSHOT, the others events.")
class RunUpdateBatch(RendersOnce):
    updates: list[RunUpdate] = strawberry.field(description="In order of `seq`.")
    last_seq: int = strawberry.field(description="The `seq` of the last update; pass it as `after` to resume.")

    @classmethod
    def from_domain(cls, batch: DomainRunUpdateBatch) -> RunUpdateBatch:
        if batch.run is not None:
            snapshot = DomainRunUpdate(seq=batch.run.last_seq, run=batch.run, event=None)
            return cls(updates=[RunUpdate.from_domain(snapshot)], last_seq=batch.run.last_seq)
        return _event_batches.get(batch.events, cls.from_events)

    @classmethod
    def from_events(cls, events: tuple[domain.RunEvent, ...]) -> RunUpdateBatch:
        return cls(updates=[RunUpdate.from_event(e) for e in events], last_seq=events[-1].seq)


_event_batches: IdentityMemo[tuple[domain.RunEvent, ...], RunUpdateBatch] = IdentityMemo(256)


RunResult = Annotated[Run | NotFoundError, strawberry.union("RunResult")]
