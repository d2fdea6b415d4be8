"""Mutations on pipelines."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.services.pipelines import DryRunOptions, ParamsFileText, PipelineWrite
from schema.context import Info
from schema.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    TemplatedPipelineError,
    ValidationError,
    WorkerUnavailableError,
    WorkspaceBusyError,
)
from schema.pipelines.inputs import CreatePipelineInput, DryRunInput, ReplacePipelineFileInput, UpdatePipelineInput
from schema.pipelines.types import DryRunPlan, Pipeline, ValidationReport


@strawberry.type(description="A stage that was not written, and why.")
class StageFailure:
    name: str = strawberry.field(description="The stage.")
    error: str = strawberry.field(description="Why it was refused.")


@strawberry.type(description="The pipeline was written to its dvc.yaml and stored.")
class PipelineWritten:
    pipeline: Pipeline = strawberry.field(description="The pipeline as stored now.")
    created_stages: list[str] = strawberry.field(description="The stages written.")
    failed_stages: list[StageFailure] = strawberry.field(
        description="Stages left out (only with allowPartial), each with its error."
    )
    validation: ValidationReport = strawberry.field(description="DVC's check of the pipeline after writing.")

    @classmethod
    def from_domain(cls, write: PipelineWrite) -> PipelineWritten:
        return cls(
            pipeline=Pipeline.from_domain(write.pipeline),
            created_stages=[o.name for o in write.outcomes if o.ok],
            failed_stages=[StageFailure(name=o.name, error=o.error or "") for o in write.outcomes if not o.ok],
            validation=ValidationReport.from_domain(write.validation),
        )


@strawberry.type(description="The pipeline's dvc.yaml and its document were removed; outputs stay on disk.")
class PipelineDeleted:
    id: strawberry.ID = strawberry.field(description="The deleted pipeline's id.")
    name: str = strawberry.field(description="Its name.")
    path: str = strawberry.field(description="The dvc.yaml that was removed.")
    removed_stages: list[str] = strawberry.field(description="The DVC stages removed.")


_WorkerErrors = WorkerUnavailableError | WorkspaceBusyError

PipelineWriteResult = Annotated[
    PipelineWritten
    | ValidationError
    | NotFoundError
    | ConflictError
    | TemplatedPipelineError
    | ForbiddenError
    | RateLimitedError
    | _WorkerErrors,
    strawberry.union("PipelineWriteResult"),
]
DeletePipelineResult = Annotated[
    PipelineDeleted | NotFoundError | ForbiddenError | _WorkerErrors, strawberry.union("DeletePipelineResult")
]
ValidatePipelineResult = Annotated[
    ValidationReport | NotFoundError | ForbiddenError | RateLimitedError | _WorkerErrors,
    strawberry.union("ValidatePipelineResult"),
]
DryRunResult = Annotated[
    DryRunPlan | ValidationError | NotFoundError | RateLimitedError | _WorkerErrors, strawberry.union("DryRunResult")
]


@strawberry.type
class PipelineMutations:
    @strawberry.mutation(
        description="Create a pipeline: every stage is checked with DVC, written to pipelines/<name>/dvc.yaml, "
        "then the pipeline is validated."
    )
    async def create_pipeline(self, info: Info, input: CreatePipelineInput) -> PipelineWriteResult:
        await info.context.spend_work()
        write = await info.context.services.pipelines.create(
            caller=info.context.caller,
            project_id=input.project_id,
            name=input.name,
            description=input.description,
            stages=[s.to_domain() for s in input.stages],
            allow_partial=input.allow_partial,
        )
        return PipelineWritten.from_domain(write)

    @strawberry.mutation(
        description="Replace a pipeline's stages, guarded by its version. A templated dvc.yaml (foreach, matrix, "
        "${...}) is refused with TemplatedPipelineError: use replacePipelineFile."
    )
    async def update_pipeline(self, info: Info, input: UpdatePipelineInput) -> PipelineWriteResult:
        await info.context.spend_work()
        write = await info.context.services.pipelines.update(
            caller=info.context.caller,
            pipeline_id=input.id,
            expected_version=input.expected_version,
            description=input.description,
            stages=[s.to_domain() for s in input.stages],
            allow_partial=input.allow_partial,
        )
        return PipelineWritten.from_domain(write)

    @strawberry.mutation(
        description="Replace a pipeline's whole dvc.yaml text (and optionally a params file), guarded by its version: "
        "DVC checks it before it is kept, all or nothing; the stages are then listed again as DVC reads them. "
        "The way to change a templated pipeline, which updatePipeline refuses."
    )
    async def replace_pipeline_file(self, info: Info, input: ReplacePipelineFileInput) -> PipelineWriteResult:
        await info.context.spend_work()
        write = await info.context.services.pipelines.replace_file(
            caller=info.context.caller,
            pipeline_id=input.id,
            expected_version=input.expected_version,
            dvc_yaml=input.dvc_yaml,
            params=None if input.params is None else ParamsFileText(input.params.path, input.params.content),
        )
        return PipelineWritten.from_domain(write)

    @strawberry.mutation(description="Delete a pipeline: its DVC stages and its document.")
    async def delete_pipeline(self, info: Info, id: strawberry.ID) -> DeletePipelineResult:
        removal = await info.context.services.pipelines.delete(caller=info.context.caller, pipeline_id=id)
        return PipelineDeleted(
            id=strawberry.ID(removal.pipeline_id),
            name=removal.name,
            path=removal.path,
            removed_stages=removal.removed_stages,
        )

    @strawberry.mutation(description="Check the pipeline's dvc.yaml with DVC and store the result.")
    async def validate_pipeline(self, info: Info, id: strawberry.ID) -> ValidatePipelineResult:
        await info.context.spend_work()
        report = await info.context.services.pipelines.validate(caller=info.context.caller, pipeline_id=id)
        return ValidationReport.from_domain(report)

    @strawberry.mutation(
        description="Plan a run without running it: every stage the run may execute, in order, with reasons."
    )
    async def dry_run_pipeline(self, info: Info, id: strawberry.ID, options: DryRunInput | None = None) -> DryRunResult:
        await info.context.spend_work()
        chosen = options or DryRunInput()
        plan = await info.context.services.pipelines.dry_run(
            caller=info.context.caller,
            pipeline_id=id,
            options=DryRunOptions(
                force=chosen.force,
                targets=tuple(chosen.targets),
                downstream=chosen.downstream,
                single_item=chosen.single_item,
                keep_going=chosen.keep_going,
            ),
        )
        return DryRunPlan.from_domain(plan)
