"""Answers about a pipeline while a run holds its workspace, without waiting for DVC.

The run's live stage states plus the last status DVC gave are what is known. The plan derived from
them errs on the side of listing a stage: a run started afterwards never executes one outside it.
"""

from __future__ import annotations

from app.domain.pipelines import DryRunPlan, Pipeline, PlanCertainty, PlannedStage, StageStatus
from app.domain.runs import Run, StageRunState

_SETTLED = (StageRunState.SUCCEEDED, StageRunState.SKIPPED)
_AHEAD = (StageRunState.PENDING, StageRunState.RUNNING)


def _live_states(pipeline: Pipeline, run: Run | None) -> dict[str, StageRunState]:
    if run is None or run.pipeline_id != pipeline.id:
        return {}
    return {s.name: s.state for s in run.stages}


def status_while_running(pipeline: Pipeline, run: Run | None, known: list[StageStatus]) -> list[StageStatus]:
    """The last known status, with the stages the run has just brought up to date marked so."""
    live = _live_states(pipeline, run)
    by_name = {s.name: s for s in known}
    statuses = []
    for stage in pipeline.stages:
        before = by_name.get(stage.name)
        settled = live.get(stage.name) in _SETTLED
        statuses.append(
            StageStatus(
                name=stage.name,
                up_to_date=settled or (before is not None and before.up_to_date and live.get(stage.name) not in _AHEAD),
                frozen=stage.frozen,
                changes=[] if settled or before is None else before.changes,
            )
        )
    return statuses


def plan_while_running(pipeline: Pipeline, run: Run | None, known: list[StageStatus], *, force: bool) -> DryRunPlan:
    live = _live_states(pipeline, run)
    by_name = {s.name: s for s in known}
    planned: list[PlannedStage] = []
    up_to_date: list[str] = []
    for stage in pipeline.stages:
        before = by_name.get(stage.name)
        unknown_or_changed = before is None or not before.up_to_date
        if stage.frozen or not (force or live.get(stage.name) in _AHEAD or unknown_or_changed):
            up_to_date.append(stage.name)
            continue
        planned.append(
            PlannedStage(
                name=stage.name,
                cmd=stage.cmd,
                certainty=PlanCertainty.WILL_RUN,
                changes=[] if before is None else before.changes,
                forced=force,
                upstream=[],
            )
        )
    return DryRunPlan(stages=planned, up_to_date=up_to_date, stale=True)
