"""Queries that compare results: across runs, over a pipeline's runs, and between git revisions."""

from __future__ import annotations

import strawberry

from app.domain.results import ResultKind as DomainResultKind
from schema.context import Info
from schema.results.types import (
    CompareRunsResult,
    MetricHistory,
    MetricHistoryResult,
    MetricPoint,
    RevisionDiff,
    RevisionDiffResult,
    RunComparison,
)

WORKSPACE = "workspace"


@strawberry.type
class ResultQueries:
    @strawberry.field(
        description="Runs side by side: a row per run, a column per param and metric, deltas against the baseline "
        "(default: the first run)."
    )
    async def compare_runs(
        self, info: Info, run_ids: list[strawberry.ID], baseline: strawberry.ID | None = None
    ) -> CompareRunsResult:
        comparison = await info.context.services.results.compare(
            caller=info.context.caller, run_ids=[str(r) for r in run_ids], baseline=baseline
        )
        return RunComparison.from_domain(comparison)

    @strawberry.field(description="One metric over a pipeline's runs, newest first, for a chart.")
    async def metric_history(
        self, info: Info, pipeline_id: strawberry.ID, file: str, key: str, first: int = 20
    ) -> MetricHistoryResult:
        points = await info.context.services.results.metric_history(
            caller=info.context.caller, pipeline_id=pipeline_id, file=file, key=key, first=info.context.page_size(first)
        )
        return MetricHistory(file=file, key=key, points=[MetricPoint.from_domain(p) for p in points])

    @strawberry.field(
        description="`dvc metrics diff --json a b`: metrics between two revisions (sha, branch, tag, or "
        "`workspace` for the working tree)."
    )
    async def metrics_diff(
        self, info: Info, project_id: strawberry.ID, a: str = "HEAD", b: str = WORKSPACE, all: bool = False
    ) -> RevisionDiffResult:
        diff = await info.context.services.results.diff(
            caller=info.context.caller, project_id=project_id, kind=DomainResultKind.METRICS, a=a, b=b, unchanged=all
        )
        return RevisionDiff.from_domain(diff)

    @strawberry.field(description="`dvc params diff --json a b`: params between two revisions.")
    async def params_diff(
        self, info: Info, project_id: strawberry.ID, a: str = "HEAD", b: str = WORKSPACE, all: bool = False
    ) -> RevisionDiffResult:
        diff = await info.context.services.results.diff(
            caller=info.context.caller, project_id=project_id, kind=DomainResultKind.PARAMS, a=a, b=b, unchanged=all
        )
        return RevisionDiff.from_domain(diff)
