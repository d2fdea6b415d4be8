"""GraphQL types of experiments: one experiment, a page of them, and the table that compares them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import strawberry

from app.domain import experiments as domain
from app.domain.results import ResultKind as DomainResultKind
from app.domain.results import ResultsSnapshot
from schema.context import Info
from schema.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    ValidationError,
    WorkerUnavailableError,
    WorkspaceBusyError,
    WorkspaceError,
)
from schema.pagination import Connection, encode_cursor
from schema.results.types import ComparisonCell, ComparisonColumn, ResultEntries, ResultKind
from schema.runs.types import Run


def _parsed(value_json: str | None) -> Any:
    return None if value_json is None else json.loads(value_json)


# The domain enum is the GraphQL enum (as in schema/runs/types.py).
ExperimentState = domain.ExperimentState
strawberry.enum(
    ExperimentState, description="Where an experiment is: its run's state, and SUCCEEDED only once saved for DVC."
)
ExperimentSource = domain.ExperimentSource
strawberry.enum(ExperimentSource, description="Who made an experiment: the service, or DVC itself.")


@strawberry.input(description="One parameter override, as `dvc exp run -S file:key=value` takes it.")
class ParamOverrideInput:
    key: str = strawberry.field(description="The dotted key path (`train.lr`); `+key` adds a key, as with DVC.")
    value: str = strawberry.field(description="The value, as DVC parses it: a scalar (`0.1`, `adam`) or a list.")
    file: str | None = strawberry.field(default=None, description="The params file (default `params.yaml`).")

    def to_domain(self) -> domain.ParamOverride:
        return domain.ParamOverride(file=self.file or domain.DEFAULT_PARAMS_FILE, key=self.key, value=self.value)


@strawberry.type(description="One parameter override of an experiment.")
class ParamOverride:
    file: str = strawberry.field(description="The params file.")
    key: str = strawberry.field(description="The dotted key path.")
    value: str = strawberry.field(description="The value as given.")


@strawberry.type(description="A run of a pipeline with parameter overrides, in a copy of its workspace.")
class Experiment:
    id: strawberry.ID = strawberry.field(description="The experiment's id.")
    project_id: strawberry.ID = strawberry.field(description="Its project.")
    pipeline_id: strawberry.ID = strawberry.field(description="Its pipeline.")
    pipeline_name: str = strawberry.field(description="The pipeline's name when it was queued.")
    name: str = strawberry.field(description="Its name, which is also its DVC experiment's name.")
    state: ExperimentState = strawberry.field(description="Where it is.")
    base_rev: str | None = strawberry.field(
        description="The revision asked for; null: the last commit plus the working tree's changes."
    )
    base_sha: str | None = strawberry.field(description="The commit its copy was made from, once made.")
    set_params: list[ParamOverride] = strawberry.field(description="Its overrides, in order.")
    run_id: strawberry.ID | None = strawberry.field(
        description="Its run (stages, logs, results; runUpdates follows it); null for one made by DVC."
    )
    source: ExperimentSource = strawberry.field(
        description="SERVICE: queued through the API; DVC: made by DVC itself (`dvc exp run`), found in `refs/exps`."
    )
    created_by: str = strawberry.field(description="The user who queued it.")
    created_at: datetime = strawberry.field(description="When it was queued.")
    started_at: datetime | None = strawberry.field(description="When its copy was set up.")
    finished_at: datetime | None = strawberry.field(description="When it ended.")
    error: str | None = strawberry.field(description="Why it did not succeed.")
    exp_ref: str | None = strawberry.field(description="Its DVC experiment's git ref (`refs/exps/...`), once saved.")
    exp_rev: str | None = strawberry.field(description="Its DVC experiment's commit, once saved.")
    sweep_id: strawberry.ID | None = strawberry.field(description="The sweep it belongs to, if any.")
    baseline: strawberry.Private[ResultsSnapshot | None]
    results: strawberry.Private[ResultsSnapshot | None]

    @strawberry.field(description="Its run: stages, states, logs, metrics and params; null for one made by DVC.")
    async def run(self, info: Info) -> Run | None:
        if self.run_id is None:
            return None
        run = await info.context.services.runs.get(caller=info.context.caller, run_id=self.run_id)
        return Run.from_domain(run)

    @strawberry.field(
        description="Its metrics, as its run kept them when it ended (null before that), or as DVC shows them for "
        "one made by DVC."
    )
    async def metrics(self, info: Info) -> ResultEntries | None:
        if self.run_id is None:
            return (
                None
                if self.results is None
                else ResultEntries.from_domain(self.results, DomainResultKind.METRICS, None)
            )
        results = await info.context.services.results.of_run(caller=info.context.caller, run_id=self.run_id)
        return (
            None
            if results is None
            else ResultEntries.from_domain(results.snapshot, DomainResultKind.METRICS, results.read_at)
        )

    @strawberry.field(
        description="Its params, as its run kept them when it ended (null before that), or as DVC shows them for one "
        "made by DVC."
    )
    async def params(self, info: Info) -> ResultEntries | None:
        if self.run_id is None:
            return (
                None if self.results is None else ResultEntries.from_domain(self.results, DomainResultKind.PARAMS, None)
            )
        results = await info.context.services.results.of_run(caller=info.context.caller, run_id=self.run_id)
        return (
            None
            if results is None
            else ResultEntries.from_domain(results.snapshot, DomainResultKind.PARAMS, results.read_at)
        )

    @strawberry.field(description="The base's params, read in the copy before the overrides; null before that.")
    def base_params(self) -> ResultEntries | None:
        if self.baseline is None:
            return None
        return ResultEntries.from_domain(self.baseline, DomainResultKind.PARAMS, None)

    @strawberry.field(description="The base's metrics, read in the copy before the run; null before that.")
    def base_metrics(self) -> ResultEntries | None:
        if self.baseline is None:
            return None
        return ResultEntries.from_domain(self.baseline, DomainResultKind.METRICS, None)

    @classmethod
    def from_domain(cls, experiment: domain.Experiment) -> Experiment:
        return cls(
            id=strawberry.ID(experiment.id),
            project_id=strawberry.ID(experiment.project_id),
            pipeline_id=strawberry.ID(experiment.pipeline_id),
            pipeline_name=experiment.pipeline_name,
            name=experiment.name,
            state=ExperimentState(experiment.state.value),
            base_rev=experiment.base_rev,
            base_sha=experiment.base_sha,
            set_params=[ParamOverride(file=o.file, key=o.key, value=o.value) for o in experiment.set_params],
            run_id=None if experiment.run_id is None else strawberry.ID(experiment.run_id),
            source=ExperimentSource(experiment.source.value),
            created_by=experiment.created_by,
            created_at=experiment.created_at,
            started_at=experiment.started_at,
            finished_at=experiment.finished_at,
            error=experiment.error,
            exp_ref=experiment.exp_ref,
            exp_rev=experiment.exp_rev,
            sweep_id=None if experiment.sweep_id is None else strawberry.ID(experiment.sweep_id),
            baseline=experiment.baseline,
            results=experiment.results,
        )


@strawberry.type(description="A page of experiments, newest first.")
class ExperimentConnection(Connection[Experiment]):
    @classmethod
    def from_items(cls, items: list[domain.Experiment], *, has_next_page: bool) -> ExperimentConnection:
        return cls.of(((encode_cursor(e.id), Experiment.from_domain(e)) for e in items), has_next_page=has_next_page)


# Columns and cells are those of compareRuns: one shape for every comparison table.


@strawberry.type(description="One experiment of the table; `cells` follow `columns`.")
class ExperimentRow:
    experiment: Experiment = strawberry.field(description="The experiment.")
    has_results: bool = strawberry.field(description="False while its run has kept no results (not ended yet).")
    cells: list[ComparisonCell] = strawberry.field(description="One per column, in the same order.")


@strawberry.type(description="Experiments side by side: a row per experiment, a column per param then metric.")
class ExperimentsTable:
    columns: list[ComparisonColumn] = strawberry.field(description="Params first, then metrics, by file and key.")
    rows: list[ExperimentRow] = strawberry.field(description="Newest first, or by the metric asked for.")
    sorted_by: ComparisonColumn | None = strawberry.field(description="The metric the rows are sorted by.")
    notes: list[str] = strawberry.field(description="Why the table is not as asked (an unknown sort metric).")

    @classmethod
    def from_domain(cls, table: domain.ExperimentsTable) -> ExperimentsTable:
        def column(c: domain.TableColumn) -> ComparisonColumn:
            return ComparisonColumn(kind=ResultKind(c.kind.value), file=c.file, key=c.key)

        return cls(
            columns=[column(c) for c in table.columns],
            rows=[
                ExperimentRow(
                    experiment=Experiment.from_domain(r.experiment),
                    has_results=r.has_results,
                    cells=[
                        ComparisonCell(value=_parsed(c.value_json), number=c.number, delta=c.delta) for c in r.cells
                    ],
                )
                for r in table.rows
            ],
            sorted_by=None if table.sorted_by is None else column(table.sorted_by),
            notes=table.notes,
        )


@strawberry.type(description="The experiment was queued; follow its run with runUpdates(runId).")
class ExperimentQueued:
    experiment: Experiment = strawberry.field(description="The new experiment, QUEUED.")


RunExperimentResult = Annotated[
    ExperimentQueued
    | ValidationError
    | NotFoundError
    | ConflictError
    | ForbiddenError
    | RateLimitedError
    | WorkerUnavailableError
    | WorkspaceBusyError,
    strawberry.union("RunExperimentResult"),
]
ExperimentResult = Annotated[Experiment | NotFoundError, strawberry.union("ExperimentResult")]
ExperimentsResult = Annotated[ExperimentConnection | NotFoundError, strawberry.union("ExperimentsResult")]
ExperimentsTableResult = Annotated[
    ExperimentsTable | NotFoundError | ValidationError, strawberry.union("ExperimentsTableResult")
]


@strawberry.type(description="The experiment is now a git branch of the workspace, as `dvc exp branch` makes it.")
class ExperimentBranched:
    experiment: Experiment = strawberry.field(description="The experiment the branch was made from.")
    branch: str = strawberry.field(description="The new branch's name (`refs/heads/<branch>`).")
    sha: str = strawberry.field(description="The commit the branch points at: the experiment's DVC commit.")


BranchExperimentResult = Annotated[
    ExperimentBranched
    | ValidationError
    | NotFoundError
    | ConflictError
    | ForbiddenError
    | WorkerUnavailableError
    | WorkspaceBusyError
    | WorkspaceError,
    strawberry.union("BranchExperimentResult"),
]


@strawberry.type(description="The experiments are gone from DVC (`dvc exp remove`: their `refs/exps`) and the service.")
class ExperimentsRemoved:
    ids: list[strawberry.ID] = strawberry.field(description="The removed experiments' ids, as given.")
    names: list[str] = strawberry.field(description="Their names, in the same order.")


RemoveExperimentsResult = Annotated[
    ExperimentsRemoved
    | ValidationError
    | NotFoundError
    | ConflictError
    | ForbiddenError
    | WorkerUnavailableError
    | WorkspaceBusyError
    | WorkspaceError,
    strawberry.union("RemoveExperimentsResult"),
]


@strawberry.type(
    description="The experiment's params and results are in the workspace, as `dvc exp apply` writes them."
)
class ExperimentApplied:
    experiment: Experiment = strawberry.field(description="The applied experiment.")
    changed_files: list[str] = strawberry.field(
        description="The tracked files that now differ from the last commit (commit them to keep the experiment)."
    )


ApplyExperimentResult = Annotated[
    ExperimentApplied
    | NotFoundError
    | ConflictError
    | ForbiddenError
    | WorkerUnavailableError
    | WorkspaceBusyError
    | WorkspaceError,
    strawberry.union("ApplyExperimentResult"),
]


@strawberry.type(
    description="The experiment is a commit on the workspace's current branch: `dvc exp apply` then `git commit` of "
    "what it changed against its base."
)
class ExperimentCommitted:
    experiment: Experiment = strawberry.field(description="The committed experiment.")
    branch: str = strawberry.field(description="The branch the commit is on (the workspace's current branch).")
    sha: str = strawberry.field(
        description="The new commit, authored by the user who asked; its tree is the experiment's."
    )
    files: list[str] = strawberry.field(description="The files it changed: those the experiment changed.")


CommitExperimentResult = Annotated[
    ExperimentCommitted
    | ValidationError
    | NotFoundError
    | ConflictError
    | ForbiddenError
    | RateLimitedError
    | WorkerUnavailableError
    | WorkspaceBusyError
    | WorkspaceError,
    strawberry.union("CommitExperimentResult"),
]


@strawberry.type(description="The experiments DVC made in the repository that are now listed.")
class ExperimentsImported:
    experiments: list[Experiment] = strawberry.field(description="The newly listed ones (source DVC), oldest first.")
    note: str | None = strawberry.field(description="What could not be fetched or listed, if anything.")


ImportExperimentsResult = Annotated[
    ExperimentsImported
    | NotFoundError
    | ForbiddenError
    | RateLimitedError
    | WorkerUnavailableError
    | WorkspaceBusyError
    | WorkspaceError,
    strawberry.union("ImportExperimentsResult"),
]
