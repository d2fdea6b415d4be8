"""GraphQL types of results: metrics, params and plots of runs and of the workspace, comparisons and diffs."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from app.domain import results as domain
from schema.errors import ForbiddenError, NotFoundError, ValidationError, WorkerUnavailableError, WorkspaceBusyError


def image_url(run_id: str, index: int) -> str:
    """Where the API serves a run's image plot (app.results_route); the caller's token is needed."""
    return f"/runs/{run_id}/images/{index}"


def _parsed(value_json: str | None) -> Any:
    return None if value_json is None else json.loads(value_json)


# The domain enum is the GraphQL enum; strawberry.enum registers it (as a statement: mypy takes no call as a type).
ResultKind = domain.ResultKind
strawberry.enum(ResultKind, description="Metrics, params or plots.")
PlotType = domain.PlotType
strawberry.enum(PlotType, description="How a plot is drawn: a Vega-Lite spec, or an image file.")


@strawberry.type(description="One value of a metrics or params file.")
class ResultEntry:
    file: str = strawberry.field(description="The file, relative to the project root.")
    key: str = strawberry.field(description="The dotted key path, as DVC prints it (`train.opt.lr`).")
    value: JSON | None = strawberry.field(description="The value (null when it was too large to keep).")
    number: float | None = strawberry.field(description="The value when it is a number.")

    @classmethod
    def from_domain(cls, entry: domain.ResultEntry) -> ResultEntry:
        return cls(file=entry.file, key=entry.key, value=_parsed(entry.value_json), number=entry.number)


@strawberry.type(description="A file DVC could not read (a malformed metrics file, a missing plot data file).")
class ResultFileError:
    kind: ResultKind = strawberry.field(description="Which reading failed.")
    file: str = strawberry.field(description="The file; empty when the failure concerns the whole reading.")
    message: str = strawberry.field(description="DVC's error.")
    revision: str | None = strawberry.field(description="The revision being read, in diffs.")

    @classmethod
    def from_domain(cls, error: domain.FileError) -> ResultFileError:
        return cls(kind=error.kind, file=error.file, message=error.message, revision=error.revision)


@strawberry.type(description="Metrics or params, as `dvc metrics show` reads them, flattened to entries.")
class ResultEntries:
    read_at: datetime | None = strawberry.field(description="When DVC read them (null for the workspace now).")
    entries: list[ResultEntry] = strawberry.field(description="Every value, by file then key.")
    errors: list[ResultFileError] = strawberry.field(description="Files DVC could not read.")
    truncation: list[str] = strawberry.field(description="What was cut to keep the snapshot bounded; empty if nothing.")

    @classmethod
    def from_domain(
        cls, snapshot: domain.ResultsSnapshot, kind: domain.ResultKind, read_at: datetime | None
    ) -> ResultEntries:
        entries = snapshot.metrics if kind == domain.ResultKind.METRICS else snapshot.params
        return cls(
            read_at=read_at,
            entries=[ResultEntry.from_domain(e) for e in entries],
            errors=[ResultFileError.from_domain(e) for e in snapshot.errors_of(kind)],
            truncation=snapshot.truncation_of(kind),
        )


@strawberry.type(description="One plot as `dvc plots show --json` renders it.")
class Plot:
    run_id: strawberry.Private[str]
    id: str = strawberry.field(description="DVC's plot id: the data file, or `dvc.yaml::name` for a top-level plot.")
    type: PlotType = strawberry.field(description="A Vega-Lite spec or an image.")
    revisions: list[str] = strawberry.field(description="The revisions drawn.")
    content: JSON | None = strawberry.field(description="The filled Vega-Lite spec, data included (VEGA).")
    content_type: str | None = strawberry.field(description="The image's media type (IMAGE).")
    image_index: strawberry.Private[int | None]

    @classmethod
    def from_domain(cls, run_id: str, plot: domain.Plot) -> Plot:
        return cls(
            run_id=run_id,
            id=plot.id,
            type=plot.type,
            revisions=plot.revisions,
            content=_parsed(plot.content_json),
            content_type=plot.content_type,
            image_index=plot.image_index,
        )

    @strawberry.field(description="The data points drawn (VEGA): the spec's `data.values`.")
    def data(self) -> JSON | None:
        if not isinstance(self.content, dict):
            return None
        values = self.content.get("data", {}).get("values")
        return values if isinstance(values, list) else None

    @strawberry.field(description="Where to GET the image with your token (IMAGE; null when it was too large).")
    def image_url(self) -> str | None:
        return None if self.image_index is None else image_url(self.run_id, self.image_index)


@strawberry.type(description="The plots of a run, as DVC rendered them when it ended.")
class Plots:
    read_at: datetime = strawberry.field(description="When DVC read them.")
    plots: list[Plot] = strawberry.field(description="Every plot of every dvc.yaml.")
    errors: list[ResultFileError] = strawberry.field(description="Plot files DVC could not read.")
    truncation: list[str] = strawberry.field(description="What was cut to keep the snapshot bounded.")

    @classmethod
    def from_domain(cls, results: domain.RunResults) -> Plots:
        snapshot = results.snapshot
        return cls(
            read_at=results.read_at,
            plots=[Plot.from_domain(results.run_id, p) for p in snapshot.plots],
            errors=[ResultFileError.from_domain(e) for e in snapshot.errors_of(domain.ResultKind.PLOTS)],
            truncation=snapshot.truncation_of(domain.ResultKind.PLOTS),
        )


@strawberry.type(description="A column of a comparison: one param or metric.")
class ComparisonColumn:
    kind: ResultKind = strawberry.field(description="PARAMS or METRICS.")
    file: str = strawberry.field(description="The file.")
    key: str = strawberry.field(description="The dotted key path.")


@strawberry.type(description="One run's value in one column.")
class ComparisonCell:
    value: JSON | None = strawberry.field(description="The value; null when the run has none.")
    number: float | None = strawberry.field(description="The value when it is a number.")
    delta: float | None = strawberry.field(description="number - the baseline's number, when both are numbers.")


@strawberry.type(description="One run of a comparison; `cells` follow `columns`.")
class ComparisonRow:
    run_id: strawberry.ID = strawberry.field(description="The run.")
    has_results: bool = strawberry.field(description="False when the run kept no results (not ended yet).")
    cells: list[ComparisonCell] = strawberry.field(description="One per column, in the same order.")


@strawberry.type(description="Runs side by side: a row per run, a column per param then metric.")
class RunComparison:
    baseline: strawberry.ID = strawberry.field(description="The run deltas are taken against.")
    columns: list[ComparisonColumn] = strawberry.field(description="Params first, then metrics, by file and key.")
    rows: list[ComparisonRow] = strawberry.field(description="The runs, in the order asked.")

    @classmethod
    def from_domain(cls, comparison: domain.Comparison) -> RunComparison:
        return cls(
            baseline=strawberry.ID(comparison.baseline),
            columns=[ComparisonColumn(kind=c.kind, file=c.file, key=c.key) for c in comparison.columns],
            rows=[
                ComparisonRow(
                    run_id=strawberry.ID(r.run_id),
                    has_results=r.has_results,
                    cells=[
                        ComparisonCell(value=_parsed(c.value_json), number=c.number, delta=c.delta) for c in r.cells
                    ],
                )
                for r in comparison.rows
            ],
        )


@strawberry.type(description="A metric's value in one run.")
class MetricPoint:
    run_id: strawberry.ID = strawberry.field(description="The run.")
    read_at: datetime = strawberry.field(description="When the run's results were read.")
    value: JSON | None = strawberry.field(description="The value.")
    number: float | None = strawberry.field(description="The value when it is a number.")

    @classmethod
    def from_domain(cls, point: domain.MetricPoint) -> MetricPoint:
        return cls(
            run_id=strawberry.ID(point.run_id),
            read_at=point.read_at,
            value=_parsed(point.value_json),
            number=point.number,
        )


@strawberry.type(description="One metric over a pipeline's runs, newest first.")
class MetricHistory:
    file: str = strawberry.field(description="The metrics file.")
    key: str = strawberry.field(description="The dotted key path.")
    points: list[MetricPoint] = strawberry.field(description="Newest first; runs without the metric are left out.")


@strawberry.type(description="A key that differs between two revisions, as `dvc metrics diff --json` gives it.")
class DiffEntry:
    file: str = strawberry.field(description="The file.")
    key: str = strawberry.field(description="The dotted key path.")
    old: JSON | None = strawberry.field(description="Its value in revision a (null when absent).")
    new: JSON | None = strawberry.field(description="Its value in revision b (null when absent).")
    delta: float | None = strawberry.field(description="new - old, when both are numbers (DVC's `diff`).")

    @classmethod
    def from_domain(cls, entry: domain.DiffEntry) -> DiffEntry:
        return cls(
            file=entry.file, key=entry.key, old=_parsed(entry.old_json), new=_parsed(entry.new_json), delta=entry.delta
        )


@strawberry.type(description="Metrics or params compared between two git revisions.")
class RevisionDiff:
    a: str = strawberry.field(description="The old revision.")
    b: str = strawberry.field(description="The new revision (`workspace` is the working tree).")
    entries: list[DiffEntry] = strawberry.field(description="The keys that differ (all keys with `all: true`).")
    errors: list[ResultFileError] = strawberry.field(description="Files DVC could not read, per revision.")

    @classmethod
    def from_domain(cls, diff: domain.RevisionDiff) -> RevisionDiff:
        return cls(
            a=diff.a,
            b=diff.b,
            entries=[DiffEntry.from_domain(e) for e in diff.entries],
            errors=[ResultFileError.from_domain(e) for e in diff.errors],
        )


_Reading = WorkerUnavailableError | WorkspaceBusyError
WorkspaceResultsResult = Annotated[ResultEntries | NotFoundError | _Reading, strawberry.union("WorkspaceResultsResult")]
CompareRunsResult = Annotated[RunComparison | NotFoundError | ValidationError, strawberry.union("CompareRunsResult")]
MetricHistoryResult = Annotated[MetricHistory | NotFoundError, strawberry.union("MetricHistoryResult")]
RevisionDiffResult = Annotated[
    RevisionDiff | NotFoundError | ValidationError | ForbiddenError | _Reading, strawberry.union("RevisionDiffResult")
]
