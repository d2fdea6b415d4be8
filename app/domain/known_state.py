"""Answers about a pipeline while a run holds its workspace, without waiting for DVC.

The run's live stage states plus the last status DVC gave are what is known. The plan derived from
them errs on the side of listing a stage: a run started afterwards never executes one outside it.
Pure logic, used by the API (which answers such reads itself, without a worker) and the workers.
"""

from __future__ import annotations

from datetime import datetime

from app.domain.pipelines import GROUP_JOIN, DryRunPlan, Pipeline, PlanCertainty, PlannedStage, StageStatus
from app.domain.runs import Run, StageRunState

_SETTLED = (StageRunState.SUCCEEDED, StageRunState.SKIPPED)
_AHEAD = (StageRunState.PENDING, StageRunState.RUNNING)


def _live_states(pipeline: Pipeline, run: Run | None) -> dict[str, StageRunState]:
    if run is None or run.pipeline_id != pipeline.id:
        return {}
    return {s.name: s.state for s in run.stages}


def known_at(pipeline: Pipeline, run: Run | None, checked_at: datetime | None, now: datetime) -> datetime:
    """When what a known-state answer reports was last true: the last DVC status, or a stage the run settled since.

    ``now`` only when nothing is known at all (no status was ever taken and the run settled nothing).
    """
    moments = [] if checked_at is None else [checked_at]
    if run is not None and run.pipeline_id == pipeline.id:
        moments += [s.finished_at for s in run.stages if s.state in _SETTLED and s.finished_at is not None]
    return max(moments) if moments else now


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


def plan_while_running(
    pipeline: Pipeline,
    run: Run | None,
    known: list[StageStatus],
    *,
    force: bool,
    targets: tuple[str, ...] = (),
    single_item: bool = False,
) -> DryRunPlan:
    """With ``single_item``, only the targets (stage or foreach/matrix group names) can run; otherwise any stage
    may be upstream or downstream of them, which the stored stages alone cannot tell, so all are considered."""
    live = _live_states(pipeline, run)
    by_name = {s.name: s for s in known}
    planned: list[PlannedStage] = []
    up_to_date: list[str] = []
    for stage in pipeline.stages:
        if single_item and not _named(stage.name, targets):
            continue
        before = by_name.get(stage.name)
        state = live.get(stage.name)
        # A stage this run has just settled is up to date, whatever the status from before the run said.
        changed = state not in _SETTLED and (state in _AHEAD or before is None or not before.up_to_date)
        if stage.frozen or not (force or changed):
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


def _named(name: str, targets: tuple[str, ...]) -> bool:
    return any(name == target or name.startswith(f"{target}{GROUP_JOIN}") for target in targets)
