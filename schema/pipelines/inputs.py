"""Inputs of pipeline mutations."""

from __future__ import annotations

import strawberry

from app.domain.pipelines import StageSpec


@strawberry.input(description="One DVC stage. Paths are relative to the project root (or to `wdir`).")
class StageInput:
    name: str = strawberry.field(description="Unique within the pipeline; DVC rejects punctuation other than - and _.")
    command: str = strawberry.field(description="The shell command DVC runs.")
    deps: list[str] = strawberry.field(default_factory=list, description="Files or folders the command reads.")
    outs: list[str] = strawberry.field(default_factory=list, description="Files or folders it writes (cached).")
    params: list[str] = strawberry.field(
        default_factory=list, description="`key` (in params.yaml) or `file:key`; file and key must exist."
    )
    metrics: list[str] = strawberry.field(default_factory=list, description="Metrics files it writes.")
    plots: list[str] = strawberry.field(default_factory=list, description="Plots files it writes.")
    description: str | None = strawberry.field(default=None, description="DVC's `desc`.")
    frozen: bool = strawberry.field(default=False, description="Never re-run this stage.")
    always_changed: bool = strawberry.field(default=False, description="Run this stage on every run.")
    wdir: str = strawberry.field(default=".", description="Working directory, relative to the project root.")

    def to_domain(self) -> StageSpec:
        return StageSpec(
            name=self.name,
            cmd=self.command,
            deps=list(self.deps),
            outs=list(self.outs),
            params=list(self.params),
            metrics=list(self.metrics),
            plots=list(self.plots),
            description=self.description,
            frozen=self.frozen,
            always_changed=self.always_changed,
            wdir=self.wdir,
        )


@strawberry.input(description="A new pipeline, written as pipelines/<name>/dvc.yaml.")
class CreatePipelineInput:
    project_id: strawberry.ID = strawberry.field(description="The project.")
    name: str = strawberry.field(description="Unique within the project; letters, digits, '_', '-', '.'.")
    description: str | None = strawberry.field(default=None, description="Free text.")
    stages: list[StageInput] = strawberry.field(description="The stages.")
    allow_partial: bool = strawberry.field(
        default=False,
        description="Write the stages that pass their checks and report the others (seed behaviour). "
        "By default the request is all-or-nothing.",
    )


@strawberry.input(description="Replace a pipeline's stage set (stages left out are removed from DVC).")
class UpdatePipelineInput:
    id: strawberry.ID = strawberry.field(description="The pipeline.")
    expected_version: int = strawberry.field(
        description="The version you read; if someone changed it since, the update is refused with a conflict."
    )
    description: str | None = strawberry.field(default=None, description="New description (unchanged if null).")
    stages: list[StageInput] = strawberry.field(description="The complete new stage set.")
    allow_partial: bool = strawberry.field(default=False, description="As in createPipeline.")


@strawberry.input(description="A params file to write together with a pipeline's dvc.yaml.")
class ParamsFileInput:
    path: str = strawberry.field(description="Relative to the project root, e.g. `params.yaml`.")
    content: str = strawberry.field(description="The file's whole new text (YAML, JSON, TOML or Python).")


@strawberry.input(
    description="Replace a pipeline's whole dvc.yaml text (templates and all), checked by DVC before it is kept."
)
class ReplacePipelineFileInput:
    id: strawberry.ID = strawberry.field(description="The pipeline.")
    expected_version: int = strawberry.field(
        description="The version you read; if someone changed it since, the request is refused with a conflict."
    )
    dvc_yaml: str = strawberry.field(description="The new dvc.yaml text: vars, foreach, matrix, ${...} are kept.")
    params: ParamsFileInput | None = strawberry.field(
        default=None, description="A params (or vars) file to write with it, in the same all-or-nothing step."
    )


@strawberry.input(
    description="Which stages a run executes, with `dvc repro`'s options; the same for executePipeline and "
    "dryRunPipeline, so a dry run previews exactly the run."
)
class RunSelectionInput:
    force: bool = strawberry.field(default=False, description="Run selected stages even if up to date (`-f`).")
    targets: list[str] = strawberry.field(
        default_factory=list,
        description="Stage names or foreach/matrix group names (`train` for `train@0`, `train@1`...) to run with "
        "their upstream; empty for all.",
    )
    downstream: bool = strawberry.field(default=False, description="The targets and everything after them.")
    single_item: bool = strawberry.field(default=False, description="Only the targets, not their upstream (`-s`).")
    keep_going: bool = strawberry.field(
        default=False,
        description="After a failure, go on with branches that do not depend on it (`-k`). It does not change "
        "which stages a run may execute, so the plan lists the same stages.",
    )


@strawberry.input(description="Options of a dry run: exactly a run's choice of stages, without its limits.")
class DryRunInput(RunSelectionInput):
    pass
