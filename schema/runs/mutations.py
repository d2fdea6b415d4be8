"""Mutations that start and stop runs."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.domain.runs import RunOptions
from schema.context import Info
from schema.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    ValidationError,
    WorkerUnavailableError,
    WorkspaceBusyError,
)
from schema.pipelines.inputs import RunSelectionInput
from schema.runs.types import Run


@strawberry.input(description="How to run a pipeline; the same options `dvc repro` knows, plus limits.")
class ExecuteInput(RunSelectionInput):
    timeout_seconds: float | None = strawberry.field(
        default=None, description="End the run TIMED_OUT after this long (default: the server's, 3600 s)."
    )
    max_parallel: int = strawberry.field(default=0, description="Independent stages at once; 0 = worker CPUs.")
    commit: bool = strawberry.field(
        default=False, description="If the run succeeds, commit what it changed that git tracks (see commitRun)."
    )

    def to_domain(self, default_timeout: float) -> RunOptions:
        return RunOptions(
            force=self.force,
            targets=tuple(self.targets),
            downstream=self.downstream,
            single_item=self.single_item,
            keep_going=self.keep_going,
            timeout_seconds=self.timeout_seconds if self.timeout_seconds is not None else default_timeout,
            max_parallel=self.max_parallel,
            commit=self.commit,
        )


@strawberry.type(description="The run was queued; follow it with the runUpdates subscription.")
class RunQueued:
    run: Run = strawberry.field(description="The new run, QUEUED.")


@strawberry.type(
    description="The run was cancelled: CANCELLED, or the final state it reached first (it ended on its own meanwhile)."
)
class RunCancelled:
    run: Run = strawberry.field(description="The run as it ended.")


_WorkerErrors = WorkerUnavailableError | WorkspaceBusyError

ExecuteResult = Annotated[
    RunQueued | ValidationError | NotFoundError | ConflictError | ForbiddenError | RateLimitedError | _WorkerErrors,
    strawberry.union("ExecuteResult"),
]
CancelRunResult = Annotated[
    RunCancelled | NotFoundError | ConflictError | ForbiddenError, strawberry.union("CancelRunResult")
]


@strawberry.type
class RunMutations:
    @strawberry.mutation(
        description="Validate the pipeline, then queue a run of it; answers at once with the QUEUED run."
    )
    async def execute_pipeline(
        self, info: Info, id: strawberry.ID, options: ExecuteInput | None = None
    ) -> ExecuteResult:
        await info.context.spend_work()
        chosen = (options or ExecuteInput()).to_domain(info.context.state.settings.default_run_timeout_seconds)
        run = await info.context.services.runs.execute(caller=info.context.caller, pipeline_id=id, options=chosen)
        return RunQueued(run=Run.from_domain(run))

    @strawberry.mutation(description="Run a finished run again with the same options.")
    async def retry_run(self, info: Info, id: strawberry.ID) -> ExecuteResult:
        await info.context.spend_work()
        run = await info.context.services.runs.retry(caller=info.context.caller, run_id=id)
        return RunQueued(run=Run.from_domain(run))

    @strawberry.mutation(
        description="Cancel a run: a queued one leaves the queue; a running one has its stages stopped and ends "
        "within 2 s, even when its worker is gone."
    )
    async def cancel_run(self, info: Info, id: strawberry.ID) -> CancelRunResult:
        run = await info.context.services.runs.cancel(caller=info.context.caller, run_id=id)
        return RunCancelled(run=Run.from_domain(run))
