"""Pipelines: define, validate, inspect. Every DVC step runs in a worker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.domain.errors import InvalidInput, Issue, NotFound
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
)
from app.domain.users import Role
from app.jobs import JobDispatcher
from app.repositories.pipelines import PipelineRepository
from app.services.access import Access


@dataclass(frozen=True, slots=True)
class PipelineWrite:
    pipeline: Pipeline
    outcomes: list[StageOutcome]
    validation: ValidationReport


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
    force: bool = False
    targets: tuple[str, ...] = ()
    downstream: bool = False


def _check_version(expected_version: int) -> None:
    if expected_version < 1:
        raise InvalidInput([Issue(path="expectedVersion", message="versions start at 1")])


@dataclass(frozen=True, slots=True)
class PipelineService:
    access: Access
    pipelines: PipelineRepository
    jobs: JobDispatcher

    async def get(self, *, caller: str, pipeline_id: str, needs: Role = Role.VIEWER) -> Pipeline:
        pipeline = await self.pipelines.get(pipeline_id)
        # A pipeline of a project the caller is not a member of is reported exactly like a missing one.
        try:
            await self.access.project(caller=caller, project_id=pipeline.project_id, needs=needs)
        except NotFound:
            raise NotFound("pipeline", pipeline_id) from None
        return pipeline

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

    async def status(self, *, caller: str, pipeline_id: str) -> PipelineStatusReport:
        pipeline = await self.get(caller=caller, pipeline_id=pipeline_id)
        payload = await self.jobs.call("pipeline_status", pipeline.id)
        return PipelineStatusReport(
            pipeline_id=pipeline.id,
            stages=[StageStatus.from_dict(s) for s in payload["stages"]],
            checked_at=payload["checked_at"],
            stale=bool(payload["stale"]),
        )

    async def dry_run(self, *, caller: str, pipeline_id: str, options: DryRunOptions) -> DryRunPlan:
        pipeline = await self.get(caller=caller, pipeline_id=pipeline_id)
        payload = await self.jobs.call(
            "dry_run_pipeline", pipeline.id, options.force, list(options.targets), options.downstream
        )
        return DryRunPlan.from_dict(payload["plan"])

    async def dag(self, *, caller: str, pipeline_id: str) -> Dag:
        pipeline = await self.get(caller=caller, pipeline_id=pipeline_id)
        payload = await self.jobs.call("pipeline_dag", pipeline.id)
        return Dag.from_dict(payload["dag"])
