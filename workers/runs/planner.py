"""What a run executes: DVC's own plan, turned into steps with their dependencies."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from app.domain.pipelines import ChangeKind, DryRunPlan, PlanCertainty, PlannedStage, StageChange
from app.domain.runs import ENVIRONMENT_STEP, RunOptions
from workers import dvcops


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    """The stage name as the run shows it (another pipeline's stage: ``<dvc.yaml>:<stage>``)."""
    target: str
    """DVC's address of the stage, relative to the workspace root."""
    command: str
    needs: frozenset[str]
    """Steps of this run that must succeed (or be skipped) before this one starts."""
    data_source: bool = False
    """A `.dvc` file: DVC verifies and caches its data; there is no command."""
    environment: bool = False
    """The project's Python environment (workers.environments), built before any stage: not a DVC stage."""


@dataclass(frozen=True, slots=True)
class RunPlan:
    steps: list[Step]
    """In DVC's execution order."""
    up_to_date: list[str]
    """Selected stages that are skipped without asking DVC again: nothing upstream of them runs."""


def address(pipeline_path: str, name: str) -> str:
    return name if ":" in name else f"{pipeline_path}:{name}"


def steps_from(pipeline_path: str, plan: DryRunPlan) -> RunPlan:
    """Steps in DVC's order; a step needs the planned stages whose outputs it consumes.

    Anything downstream of a planned stage is planned too (it runs if its inputs change), so a stage's direct
    producers among the planned ones are all it waits for: DVC's graph needs no second reading.
    """
    planned = plan.stages  # the plan already honours targets, downstream and single_item
    names = {s.name for s in planned}
    steps = [
        Step(
            name=s.name,
            target=s.name if s.data_source else address(pipeline_path, s.name),
            command=s.cmd,
            needs=frozenset(u for u in s.upstream if u in names),
            data_source=s.data_source,
        )
        for s in planned
    ]
    return RunPlan(steps=steps, up_to_date=list(plan.up_to_date))


def with_environment_step(plan: RunPlan, requirements_source: str) -> RunPlan:
    """The plan with the environment step first and every step needing it: nothing runs without the environment,
    and a failed build leaves every stage NOT_RUN. A plan with nothing to run gets no step."""
    if not plan.steps:
        return plan
    step = Step(
        name=ENVIRONMENT_STEP,
        target="",
        command=environment_command(requirements_source),
        needs=frozenset(),
        environment=True,
    )
    needing = [replace(s, needs=s.needs | {ENVIRONMENT_STEP}) for s in plan.steps]
    return RunPlan(steps=[step, *needing], up_to_date=plan.up_to_date)


def environment_command(requirements_source: str) -> str:
    """What the environment step shows as its command (a run's step and a dry run's planned stage alike)."""
    return f"uv pip install -r {requirements_source}"


NOT_BUILT = "not built"


def with_planned_environment(plan: DryRunPlan, requirements_source: str, *, built: bool) -> DryRunPlan:
    """A dry run's plan as a run with the same options would execute it (``with_environment_step``): the
    environment step first, every planned stage after it, nothing added to a plan with nothing to run. The step is
    WILL_RUN (a run executes it first either way: it builds the environment, or finds it ``built`` and is SKIPPED),
    with the requirements file as its change when the environment for it is not built yet."""
    if not plan.stages:
        return plan
    changes = [] if built else [StageChange(kind=ChangeKind.DEP, path=requirements_source, state=NOT_BUILT)]
    step = PlannedStage(
        name=ENVIRONMENT_STEP,
        cmd=environment_command(requirements_source),
        certainty=PlanCertainty.WILL_RUN,
        changes=changes,
        forced=False,
        upstream=[],
    )
    stages = [replace(s, upstream=[ENVIRONMENT_STEP, *s.upstream]) for s in plan.stages]
    return replace(plan, stages=[step, *stages])


def plan_run(root: Path, pipeline_path: str, options: RunOptions) -> RunPlan:
    """Blocking: call through ``asyncio.to_thread``."""
    plan = dvcops.dry_run_plan(
        root,
        pipeline_path,
        force=options.force,
        targets=list(options.targets),
        downstream=options.downstream,
        single_item=options.single_item,
    )
    return steps_from(pipeline_path, plan)
