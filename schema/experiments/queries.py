"""Queries on experiments: a pipeline's, one, and the table comparing them."""

from __future__ import annotations

import strawberry

from app.domain.errors import InvalidInput, Issue
from schema.context import Info
from schema.experiments.sweep_types import Sweep, SweepResult
from schema.experiments.types import (
    Experiment,
    ExperimentConnection,
    ExperimentResult,
    ExperimentsResult,
    ExperimentsTable,
    ExperimentsTableResult,
    ExperimentState,
)
from schema.pagination import decode_cursor


@strawberry.input(description="The metric to sort experiments by.")
class MetricSortInput:
    file: str = strawberry.field(description="The metrics file.")
    key: str = strawberry.field(description="The dotted key path.")
    descending: bool = strawberry.field(default=True, description="Largest first (the default).")


@strawberry.type
class ExperimentQueries:
    @strawberry.field(description="A pipeline's experiments, newest first; only those in `state` when given.")
    async def experiments(
        self,
        info: Info,
        pipeline_id: strawberry.ID,
        first: int = 20,
        after: str | None = None,
        state: ExperimentState | None = None,
    ) -> ExperimentsResult:
        page = await info.context.services.experiments.list_page(
            caller=info.context.caller,
            pipeline_id=pipeline_id,
            first=info.context.page_size(first),
            after=decode_cursor(after),
            state=state,
        )
        return ExperimentConnection.from_items(page.items, has_next_page=page.has_next_page)

    @strawberry.field(description="One experiment by id.")
    async def experiment(self, info: Info, id: strawberry.ID) -> ExperimentResult:
        found = await info.context.services.experiments.get(caller=info.context.caller, experiment_id=id)
        return Experiment.from_domain(found)

    @strawberry.field(
        description="A pipeline's or a sweep's experiments side by side: a row per experiment, a column per param and "
        "metric, deltas against each experiment's base; sorted by a metric when asked."
    )
    async def experiments_table(
        self,
        info: Info,
        pipeline_id: strawberry.ID | None = None,
        sweep_id: strawberry.ID | None = None,
        sort_by: MetricSortInput | None = None,
    ) -> ExperimentsTableResult:
        chosen = None if sort_by is None else (sort_by.file, sort_by.key)
        descending = True if sort_by is None else sort_by.descending
        caller = info.context.caller
        if (pipeline_id is None) == (sweep_id is None):
            raise InvalidInput([Issue(path="pipelineId", message="give either pipelineId or sweepId")])
        if sweep_id is not None:
            table = await info.context.services.sweeps.table(
                caller=caller, sweep_id=sweep_id, sort_by=chosen, descending=descending
            )
        else:
            table = await info.context.services.experiments.table(
                caller=caller, pipeline_id=str(pipeline_id), sort_by=chosen, descending=descending
            )
        return ExperimentsTable.from_domain(table)

    @strawberry.field(description="One sweep by id, with its experiments and counts.")
    async def sweep(self, info: Info, id: strawberry.ID) -> SweepResult:
        progress = await info.context.services.sweeps.get(caller=info.context.caller, sweep_id=id)
        return Sweep.from_domain(progress)
