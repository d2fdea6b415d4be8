"""GraphQL types of sweeps: a grid of params run as experiments, with its own state and counts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from app.domain import experiments as domain
from schema.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    ValidationError,
    WorkerUnavailableError,
    WorkspaceBusyError,
)
from schema.experiments.types import Experiment, ExperimentState


@strawberry.input(description="One param of a sweep and the values it takes.")
class SweepAxisInput:
    key: str = strawberry.field(description="The dotted key path (`train.lr`).")
    values: list[str] = strawberry.field(description="Its values, each as DVC parses `-S key=value`.")
    file: str | None = strawberry.field(default=None, description="The params file (default `params.yaml`).")

    def to_domain(self) -> domain.SweepAxis:
        return domain.SweepAxis(file=self.file or domain.DEFAULT_PARAMS_FILE, key=self.key, values=list(self.values))


@strawberry.type(description="One param of a sweep and the values it takes.")
class SweepAxis:
    file: str = strawberry.field(description="The params file.")
    key: str = strawberry.field(description="The dotted key path.")
    values: list[str] = strawberry.field(description="Its values, as given.")


@strawberry.type(description="How many of a sweep's experiments are in each state.")
class SweepCounts:
    queued: int = strawberry.field(description="Waiting for a slot or a worker.")
    running: int = strawberry.field(description="Running (or being saved).")
    succeeded: int = strawberry.field(description="Run and saved as DVC experiments.")
    failed: int = strawberry.field(description="Failed (their logs and errors are kept).")
    cancelled: int = strawberry.field(description="Cancelled.")
    timed_out: int = strawberry.field(description="Stopped by their timeout.")


@strawberry.type(description="The cartesian product of a grid of params, as experiments run in parallel up to a limit.")
class Sweep:
    id: strawberry.ID = strawberry.field(description="The sweep's id.")
    project_id: strawberry.ID = strawberry.field(description="Its project.")
    pipeline_id: strawberry.ID = strawberry.field(description="Its pipeline.")
    name: str = strawberry.field(description="Its name; its experiments are named `<name>-1`, `<name>-2`, ...")
    state: ExperimentState = strawberry.field(
        description="QUEUED, RUNNING until every experiment ended, then SUCCEEDED (all did), CANCELLED or FAILED."
    )
    grid: list[SweepAxis] = strawberry.field(description="The params and their values.")
    max_parallel: int = strawberry.field(description="Experiments at once; 0 = the worker's CPUs.")
    base_rev: str | None = strawberry.field(description="The revision asked for; null: last commit plus changes.")
    created_by: str = strawberry.field(description="The user who queued it.")
    created_at: datetime = strawberry.field(description="When it was queued.")
    counts: SweepCounts = strawberry.field(description="Its experiments per state.")
    experiments: list[Experiment] = strawberry.field(description="Its experiments, in the grid's order.")

    @classmethod
    def from_domain(cls, progress: domain.SweepProgress) -> Sweep:
        sweep, states = progress.sweep, domain.ExperimentState
        return cls(
            id=strawberry.ID(sweep.id),
            project_id=strawberry.ID(sweep.project_id),
            pipeline_id=strawberry.ID(sweep.pipeline_id),
            name=sweep.name,
            state=ExperimentState(progress.state.value),
            grid=[SweepAxis(file=a.file, key=a.key, values=a.values) for a in sweep.grid],
            max_parallel=sweep.max_parallel,
            base_rev=sweep.base_rev,
            created_by=sweep.created_by,
            created_at=sweep.created_at,
            counts=SweepCounts(
                queued=progress.count(states.QUEUED),
                running=progress.count(states.RUNNING),
                succeeded=progress.count(states.SUCCEEDED),
                failed=progress.count(states.FAILED),
                cancelled=progress.count(states.CANCELLED),
                timed_out=progress.count(states.TIMED_OUT),
            ),
            experiments=[Experiment.from_domain(e) for e in progress.experiments],
        )


@strawberry.type(description="The sweep was queued: every experiment QUEUED.")
class SweepQueued:
    sweep: Sweep = strawberry.field(description="The new sweep.")


@strawberry.type(description="Every experiment of the sweep that had not ended was cancelled.")
class SweepCancelled:
    sweep: Sweep = strawberry.field(description="The sweep after the cancel.")


RunSweepResult = Annotated[
    SweepQueued
    | ValidationError
    | NotFoundError
    | ConflictError
    | ForbiddenError
    | RateLimitedError
    | WorkerUnavailableError
    | WorkspaceBusyError,
    strawberry.union("RunSweepResult"),
]
CancelSweepResult = Annotated[
    SweepCancelled | NotFoundError | ConflictError | ForbiddenError, strawberry.union("CancelSweepResult")
]
SweepResult = Annotated[Sweep | NotFoundError, strawberry.union("SweepResult")]
