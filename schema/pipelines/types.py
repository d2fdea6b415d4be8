"""GraphQL types of pipelines and their stages."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from app.domain import pipelines as domain
from app.domain.pages import Page
from schema.context import Info
from schema.errors import FieldIssue, NotFoundError, WorkerUnavailableError, WorkspaceBusyError, graphql_field_path
from schema.pagination import Connection, encode_cursor

if TYPE_CHECKING:
    from schema.results.history_types import HistoryResult
    from schema.results.types import WorkspaceResultsResult
    from schema.runs.types import Run


# The domain enum is the GraphQL enum; strawberry.enum registers it (as a statement: mypy takes no call as a type).
PipelineSource = domain.PipelineSource
strawberry.enum(PipelineSource, description="Where a pipeline came from.")


@strawberry.type(description="One DVC stage: a command with its dependencies and outputs.")
class Stage:
    name: str = strawberry.field(description="Unique within its pipeline.")
    command: str = strawberry.field(description="The shell command DVC runs (`cmd`).")
    deps: list[str] = strawberry.field(description="Files or folders the command reads.")
    outs: list[str] = strawberry.field(description="Files or folders it writes (cached by DVC).")
    params: list[str] = strawberry.field(description="Parameters it reads: `key` (params.yaml) or `file:key`.")
    metrics: list[str] = strawberry.field(description="Metrics files it writes (not cached).")
    plots: list[str] = strawberry.field(description="Plots files it writes (not cached).")
    description: str | None = strawberry.field(description="DVC's `desc`.")
    frozen: bool = strawberry.field(description="A frozen stage is never re-run.")
    always_changed: bool = strawberry.field(description="Always considered changed: runs on every run.")
    wdir: str = strawberry.field(description="Working directory, relative to the project root.")

    @classmethod
    def from_domain(cls, stage: domain.StageSpec) -> Stage:
        return cls(
            name=stage.name,
            command=stage.cmd,
            deps=stage.deps,
            outs=stage.outs,
            params=stage.params,
            metrics=stage.metrics,
            plots=stage.plots,
            description=stage.description,
            frozen=stage.frozen,
            always_changed=stage.always_changed,
            wdir=stage.wdir,
        )


@strawberry.type(description="The result of checking a pipeline with DVC.")
class ValidationReport:
    valid: bool = strawberry.field(description="True when DVC accepts the pipeline as it is.")
    issues: list[FieldIssue] = strawberry.field(description="Every problem found.")
    checked_at: datetime = strawberry.field(description="When the check ran (UTC).")

    @classmethod
    def from_domain(cls, report: domain.ValidationReport) -> ValidationReport:
        return cls(
            valid=report.valid,
            issues=[
                FieldIssue(path=graphql_field_path(i.path), message=i.message, stage=i.stage) for i in report.issues
            ],
            checked_at=report.checked_at,
        )


ChangeKind = domain.ChangeKind
strawberry.enum(
    ChangeKind,
    description="What kind of change makes a stage out of date. "
    "UPSTREAM: a stage of another pipeline it depends on is.",
)


@strawberry.type(description="One reason DVC gives for a stage being out of date.")
class StageChange:
    kind: ChangeKind = strawberry.field(description="Dependency, output, parameter, command, ...")
    path: str | None = strawberry.field(description="The file concerned (for params, the params file).")
    key: str | None = strawberry.field(description="The parameter key, for parameter changes.")
    state: str | None = strawberry.field(description="DVC's word: modified, new, deleted, not in cache, ...")
    stage: str | None = strawberry.field(
        description="For UPSTREAM: the out-of-date stage of another pipeline (whose dvc.yaml is `path`) that this "
        "stage depends on; a run executes it first, as `dvc status --with-deps` tells."
    )

    @classmethod
    def from_domain(cls, change: domain.StageChange) -> StageChange:
        return cls(kind=change.kind, path=change.path, key=change.key, state=change.state, stage=change.stage)


@strawberry.type(description="Whether one stage is up to date, and if not, why.")
class StageStatus:
    name: str = strawberry.field(description="The stage.")
    up_to_date: bool = strawberry.field(description="True when a run would skip it.")
    frozen: bool = strawberry.field(description="Frozen stages never run.")
    changes: list[StageChange] = strawberry.field(description="Why it is out of date (empty when up to date).")

    @classmethod
    def from_domain(cls, status: domain.StageStatus) -> StageStatus:
        return cls(
            name=status.name,
            up_to_date=status.up_to_date,
            frozen=status.frozen,
            changes=[StageChange.from_domain(c) for c in status.changes],
        )


@strawberry.type(description="DVC's status of every stage of a pipeline.")
class PipelineStatus:
    up_to_date: bool = strawberry.field(description="True when every stage is up to date.")
    stages: list[StageStatus] = strawberry.field(description="Per stage, in pipeline order.")
    checked_at: datetime = strawberry.field(description="When DVC computed it (UTC).")
    stale: bool = strawberry.field(
        description="True when the workspace was busy and this is the last status known rather than a fresh one."
    )


PlanCertainty = domain.PlanCertainty
strawberry.enum(PlanCertainty, description="How sure the plan is that a stage runs.")


@strawberry.type(description="One stage a run would execute.")
class PlannedStage:
    name: str = strawberry.field(description="The stage.")
    command: str = strawberry.field(description="The command it would run.")
    certainty: PlanCertainty = strawberry.field(
        description="WILL_RUN: changed or forced. "
        "IF_UPSTREAM_CHANGES: runs if a planned upstream stage changes its outputs."
    )
    changes: list[StageChange] = strawberry.field(description="Why it is out of date.")
    forced: bool = strawberry.field(description="Runs because the run is forced.")
    upstream: list[str] = strawberry.field(description="Planned stages whose outputs it consumes.")

    @classmethod
    def from_domain(cls, stage: domain.PlannedStage) -> PlannedStage:
        return cls(
            name=stage.name,
            command=stage.cmd,
            certainty=stage.certainty,
            changes=[StageChange.from_domain(c) for c in stage.changes],
            forced=stage.forced,
            upstream=stage.upstream,
        )


@strawberry.type(description="What a run with the same options would do, in execution order.")
class DryRunPlan:
    stages: list[PlannedStage] = strawberry.field(description="Every stage the run may execute, in order.")
    up_to_date: list[str] = strawberry.field(description="Selected stages the run will skip.")
    stale: bool = strawberry.field(
        description="True while a run holds the workspace: derived from its live state and the last known "
        "status (it may list more stages than a fresh plan), not from DVC just now."
    )

    @classmethod
    def from_domain(cls, plan: domain.DryRunPlan) -> DryRunPlan:
        return cls(
            stages=[PlannedStage.from_domain(s) for s in plan.stages], up_to_date=plan.up_to_date, stale=plan.stale
        )


@strawberry.type(description="A stage in the DAG.")
class DagNode:
    name: str = strawberry.field(description="The stage.")
    command: str = strawberry.field(description="Its command.")
    pipeline_path: str = strawberry.field(description="The dvc.yaml that defines it.")
    external: bool = strawberry.field(description="True for another pipeline's stage connected to this one.")


@strawberry.type(description="Data flowing from one stage to another.")
class DagEdge:
    source: str = strawberry.field(description="The upstream stage, which produces the paths.")
    target: str = strawberry.field(description="The downstream stage, which depends on them.")
    paths: list[str] = strawberry.field(description="The outputs of `source` that `target` depends on.")


@strawberry.type(description="A pipeline's stages and how data flows between them.")
class Dag:
    nodes: list[DagNode] = strawberry.field(description="The stages.")
    edges: list[DagEdge] = strawberry.field(description="Producer to consumer.")
    mermaid: str = strawberry.field(description="A Mermaid flowchart of the DAG, ready to render.")

    @classmethod
    def from_domain(cls, dag: domain.Dag) -> Dag:
        return cls(
            nodes=[
                DagNode(name=n.name, command=n.cmd, pipeline_path=n.pipeline_path, external=n.external)
                for n in dag.nodes
            ],
            edges=[DagEdge(source=e.source, target=e.target, paths=e.paths) for e in dag.edges],
            mermaid=dag.mermaid,
        )


PipelineStatusResult = Annotated[
    PipelineStatus | NotFoundError | WorkerUnavailableError | WorkspaceBusyError,
    strawberry.union("PipelineStatusResult"),
]
DagResult = Annotated[Dag | NotFoundError | WorkerUnavailableError | WorkspaceBusyError, strawberry.union("DagResult")]


@strawberry.type(description="A pipeline: one dvc.yaml file of a project's workspace.")
class Pipeline:
    id: strawberry.ID = strawberry.field(description="The pipeline's id.")
    project_id: strawberry.ID = strawberry.field(description="The project it belongs to.")
    name: str = strawberry.field(description="Unique within the project.")
    path: str = strawberry.field(description="Its dvc.yaml, relative to the project root.")
    description: str | None = strawberry.field(description="Free text.")
    source: PipelineSource = strawberry.field(description="Created through the API or found in the repository.")
    version: int = strawberry.field(description="Increases on every update; pass it back as `expectedVersion`.")
    stages: list[Stage] = strawberry.field(description="The stages, as stored.")
    validation: ValidationReport | None = strawberry.field(description="The last validation result.")
    created_at: datetime = strawberry.field(description="When it was created (UTC).")
    updated_at: datetime = strawberry.field(description="When it last changed (UTC).")
    run_count: int = strawberry.field(description="How many runs have finished.")
    last_run_id: strawberry.Private[str | None]

    @classmethod
    def from_domain(cls, pipeline: domain.Pipeline) -> Pipeline:
        return cls(
            id=strawberry.ID(pipeline.id),
            project_id=strawberry.ID(pipeline.project_id),
            name=pipeline.name,
            path=pipeline.path,
            description=pipeline.description,
            source=pipeline.source,
            version=pipeline.version,
            stages=[Stage.from_domain(s) for s in pipeline.stages],
            validation=ValidationReport.from_domain(pipeline.validation) if pipeline.validation else None,
            created_at=pipeline.created_at,
            updated_at=pipeline.updated_at,
            run_count=pipeline.run_count,
            last_run_id=pipeline.last_run_id,
        )

    @strawberry.field(description="The last finished run.")
    async def last_run(self, info: Info) -> Annotated[Run, strawberry.lazy("schema.runs.types")] | None:
        from schema.runs.types import Run

        if self.last_run_id is None:
            return None
        return Run.from_domain(await info.context.loaders.runs.load(self.last_run_id))

    @strawberry.field(description="DVC's status of each stage: up to date or changed, and why. Asks a worker.")
    async def status(self, info: Info) -> PipelineStatusResult:
        report = await info.context.loaders.pipeline_status.load(self.id)
        stages = [StageStatus.from_domain(s) for s in report.stages]
        return PipelineStatus(
            up_to_date=all(s.up_to_date for s in stages),
            stages=stages,
            checked_at=report.checked_at,
            stale=report.stale,
        )

    @strawberry.field(description="The workspace's metrics now, as `dvc metrics show` reads them. Asks a worker.")
    async def metrics(self, info: Info) -> Annotated[WorkspaceResultsResult, strawberry.lazy("schema.results.types")]:
        from app.domain.results import ResultKind
        from schema.results.types import ResultEntries

        snapshot = await info.context.services.results.of_workspace(caller=info.context.caller, pipeline_id=self.id)
        return ResultEntries.from_domain(snapshot, ResultKind.METRICS, None)

    @strawberry.field(description="The workspace's params now, as `dvc params diff --all` lists them. Asks a worker.")
    async def params(self, info: Info) -> Annotated[WorkspaceResultsResult, strawberry.lazy("schema.results.types")]:
        from app.domain.results import ResultKind
        from schema.results.types import ResultEntries

        snapshot = await info.context.services.results.of_workspace(caller=info.context.caller, pipeline_id=self.id)
        return ResultEntries.from_domain(snapshot, ResultKind.PARAMS, None)

    @strawberry.field(description="The commits that touched its dvc.yaml or dvc.lock, newest first. Asks a worker.")
    async def history(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Annotated[HistoryResult, strawberry.lazy("schema.results.history_types")]:
        from schema.results.history_types import CommitConnection, offset_of

        offset = offset_of(after)
        page = await info.context.services.history.pipeline_history(
            caller=info.context.caller, pipeline_id=self.id, skip=offset, count=info.context.page_size(first)
        )
        return CommitConnection.from_domain(page, offset)

    @strawberry.field(description="The stages and the data flowing between them, with a Mermaid rendering.")
    async def dag(self, info: Info) -> DagResult:
        return Dag.from_domain(
            await info.context.services.pipelines.dag(caller=info.context.caller, pipeline_id=self.id)
        )


@strawberry.type(description="A page of pipelines.")
class PipelineConnection(Connection[Pipeline]):
    @classmethod
    def from_page(cls, page: Page[domain.Pipeline]) -> PipelineConnection:
        pipelines = ((encode_cursor(p.id), Pipeline.from_domain(p)) for p in page.items)
        return cls.of(pipelines, has_next_page=page.has_next_page)


PipelineResult = Annotated[Pipeline | NotFoundError, strawberry.union("PipelineResult")]
