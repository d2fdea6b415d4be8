"""Pipelines: define, validate, inspect. Every DVC step runs in a worker."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from app.domain.errors import InvalidInput, Issue, NotFound
from app.domain.known_state import known_at, plan_while_running, status_while_running
from app.domain.names import check_name, check_stage_specs
from app.domain.pages import Page
from app.domain.pipelines import (
    Dag,
    DryRunPlan,
    Pipeline,
    StageOutcome,
    StageSpec,
    StageStatus,
    ValidationReport,
    target_names,
)
from app.domain.runs import Run
from app.domain.users import Role
from app.jobs import JobDispatcher
from app.repositories.pipelines import PipelineRepository
from app.services.access import Access
from app.services.workspace_holder import WorkspaceHolder


@dataclass(frozen=True, slots=True)
class PipelineWrite:
    pipeline: Pipeline
    outcomes: list[StageOutcome]
    validation: ValidationReport


@dataclass(frozen=True, slots=True)
class ParamsFileText:
    path: str
    """Relative to the project root."""
    content: str


@dataclass(frozen=True, slots=True)
class PipelineRemoval:
    pipeline_id: str
    name: str
    path: str
    removed_stages: list[str]


@dataclass(frozen=True, slots=True)
class PipelineStatusReport:
    pipeline_id: str
    stages: list[StageStatus]
    checked_at: datetime
    stale: bool
    """True when the workspace was busy and this is the last status known, not a fresh one."""


@dataclass(frozen=True, slots=True)
class DryRunOptions:
    """A run's choice of stages (RunOptions without its limits): a dry run previews exactly that run."""

    force: bool = False
    targets: tuple[str, ...] = ()
    downstream: bool = False
    single_item: bool = False
    keep_going: bool = False
    """Changes what a run does after a failure, not which stages it may execute."""


def check_selection(
    targets: tuple[str, ...], single_item: bool, stages: list[StageSpec], *, prefix: str = ""
) -> list[Issue]:
    """What executePipeline and dryRunPipeline refuse in their options' choice of stages."""
    known = target_names(stages)
    issues = [
        Issue(path=f"{prefix}targets[{i}]", message=f"no stage or foreach/matrix group named {t!r} in this pipeline")
        for i, t in enumerate(targets)
        if t not in known
    ]
    if single_item and not targets:
        issues.append(Issue(path=f"{prefix}singleItem", message="singleItem needs targets"))
    return issues


def _check_version(expected_version: int) -> None:
    if expected_version < 1:
        raise InvalidInput([Issue(path="expectedVersion", message="versions start at 1")])


@dataclass(frozen=True, slots=True)
class PipelineService:
    access: Access
    pipelines: PipelineRepository
    jobs: JobDispatcher
    holder: WorkspaceHolder | None = None
    """When given, status and dry runs during a run are answered here, without a worker."""

    async def get(self, *, caller: str, pipeline_id: str, needs: Role = Role.VIEWER) -> Pipeline:
        pipeline = await self.pipelines.get(pipeline_id)
        await self._check_access(caller, pipeline, needs)
        return pipeline

    async def _check_access(self, caller: str, pipeline: Pipeline, needs: Role = Role.VIEWER) -> None:
        # A pipeline of a project the caller is not a member of is reported exactly like a missing one.
        try:
            await self.access.project(caller=caller, project_id=pipeline.project_id, needs=needs)
        except NotFound:
            raise NotFound("pipeline", pipeline.id) from None

    async def list_page(self, *, caller: str, project_id: str, first: int, after: str | None) -> Page[Pipeline]:
        await self.access.project(caller=caller, project_id=project_id, needs=Role.VIEWER)
        return await self.pipelines.list_page(project_id=project_id, first=first, after=after)

    async def create(
        self,
        *,
        caller: str,
        project_id: str,
        name: str,
        description: str | None,
        stages: list[StageSpec],
        allow_partial: bool,
    ) -> PipelineWrite:
        check_name(name, field="name", what="pipeline")
        check_stage_specs(stages)
        project = await self.access.project(caller=caller, project_id=project_id, needs=Role.EDITOR)
        payload = await self.jobs.call(
            "apply_pipeline",
            project.id,
            name,
            description,
            [s.to_dict() for s in stages],
            None,
            None,
            allow_partial,
        )
        return await self._written(payload)

    async def update(
        self,
        *,
        caller: str,
        pipeline_id: str,
        expected_version: int,
        description: str | None,
        stages: list[StageSpec],
        allow_partial: bool,
    ) -> PipelineWrite:
        _check_version(expected_version)
        check_stage_specs(stages)
        pipeline = await self.get(caller=caller, pipeline_id=pipeline_id, needs=Role.EDITOR)
        payload = await self.jobs.call(
            "apply_pipeline",
            pipeline.project_id,
            pipeline.name,
            description,
            [s.to_dict() for s in stages],
            pipeline.id,
            expected_version,
            allow_partial,
        )
        return await self._written(payload)

    async def replace_file(
        self,
        *,
        caller: str,
        pipeline_id: str,
        expected_version: int,
        dvc_yaml: str,
        params: ParamsFileText | None,
    ) -> PipelineWrite:
        """Replace the pipeline's whole dvc.yaml (and a params file), checked by DVC, guarded by the version."""
        _check_version(expected_version)
        pipeline = await self.get(caller=caller, pipeline_id=pipeline_id, needs=Role.EDITOR)
        payload = await self.jobs.call(
            "replace_pipeline_file",
            pipeline.id,
            expected_version,
            dvc_yaml,
            None if params is None else params.path,
            None if params is None else params.content,
        )
        return await self._written(payload)

    async def _written(self, payload: dict[str, object]) -> PipelineWrite:
        pipeline = await self.pipelines.get(str(payload["pipeline_id"]))
        outcomes = payload["outcomes"]
        validation = payload["validation"]
        assert isinstance(outcomes, list) and isinstance(validation, dict)
        return PipelineWrite(
            pipeline=pipeline,
            outcomes=[StageOutcome(name=o["name"], ok=o["ok"], error=o["error"]) for o in outcomes],
            validation=ValidationReport.from_dict(validation),
        )

    async def delete(self, *, caller: str, pipeline_id: str) -> PipelineRemoval:
        pipeline = await self.get(caller=caller, pipeline_id=pipeline_id, needs=Role.EDITOR)
        payload = await self.jobs.call("delete_pipeline", pipeline.id)
        return PipelineRemoval(
            pipeline_id=pipeline.id,
            name=pipeline.name,
            path=pipeline.path,
            removed_stages=list(payload["removed_stages"]),
        )

    async def validate(self, *, caller: str, pipeline_id: str) -> ValidationReport:
        # Validation stores its result on the pipeline, so it is an editor's action.
        pipeline = await self.get(caller=caller, pipeline_id=pipeline_id, needs=Role.EDITOR)
        payload = await self.jobs.call("validate_pipeline", pipeline.id)
        return ValidationReport.from_dict(payload["validation"])

    async def _with_known_state(
        self, caller: str, pipeline_id: str
    ) -> tuple[Pipeline, Run | None, tuple[list[StageStatus], datetime] | None]:
        """The pipeline (access checked), the run holding its workspace if any, and its last known status: the
        reads of a status or dry run, in as few round trips as they allow."""
        pipeline, known = await self.pipelines.get_with_last_status(pipeline_id)
        if self.holder is None:
            await self._check_access(caller, pipeline)
            return pipeline, None, known
        _, run = await asyncio.gather(
            self._check_access(caller, pipeline), self.holder.running_run(pipeline.project_id)
        )
        return pipeline, run, known

    async def status(self, *, caller: str, pipeline_id: str) -> PipelineStatusReport:
        pipeline, run, known = await self._with_known_state(caller, pipeline_id)
        return await self._status(pipeline, run, known)

    async def status_of(self, pipeline: Pipeline) -> PipelineStatusReport:
        """The status of a pipeline the caller has already been allowed to see (schema.loaders checks once)."""
        if self.holder is None:
            return await self._status(pipeline, None, None)
        run, known = await asyncio.gather(
            self.holder.running_run(pipeline.project_id), self.pipelines.last_status(pipeline.id)
        )
        return await self._status(pipeline, run, known)

    async def _status(
        self, pipeline: Pipeline, run: Run | None, known: tuple[list[StageStatus], datetime] | None
    ) -> PipelineStatusReport:
        if run is not None:
            # At once, from what is known: DVC's lock is the run's until it ends.
            return PipelineStatusReport(
                pipeline_id=pipeline.id,
                stages=status_while_running(pipeline, run, known[0] if known else []),
                checked_at=known_at(pipeline, run, known[1] if known else None, datetime.now(UTC)),
                stale=True,
            )
        payload = await self.jobs.call("pipeline_status", pipeline.id)
        return PipelineStatusReport(
            pipeline_id=pipeline.id,
            stages=[StageStatus.from_dict(s) for s in payload["stages"]],
            checked_at=payload["checked_at"],
            stale=bool(payload["stale"]),
        )

    async def dry_run(self, *, caller: str, pipeline_id: str, options: DryRunOptions) -> DryRunPlan:
        pipeline, run, known = await self._with_known_state(caller, pipeline_id)
        issues = check_selection(options.targets, options.single_item, pipeline.stages)
        if issues:
            raise InvalidInput(issues)
        if run is not None:
            return plan_while_running(
                pipeline,
                run,
                known[0] if known else [],
                force=options.force,
                targets=options.targets,
                single_item=options.single_item,
            )
        payload = await self.jobs.call(
            "dry_run_pipeline",
            pipeline.id,
            options.force,
            list(options.targets),
            options.downstream,
            options.single_item,
        )
        return DryRunPlan.from_dict(payload["plan"])

    async def dag(self, *, caller: str, pipeline_id: str) -> Dag:
        pipeline = await self.get(caller=caller, pipeline_id=pipeline_id)
        payload = await self.jobs.call("pipeline_dag", pipeline.id)
        return Dag.from_dict(payload["dag"])
