"""Pure logic: what status and plan to answer while a run holds the workspace."""

from __future__ import annotations

from datetime import UTC, datetime

from app.domain.pipelines import ChangeKind, Pipeline, PipelineSource, StageChange, StageSpec, StageStatus
from app.domain.runs import Run, RunOptions, RunState, StageRun, StageRunState, Trigger
from workers.jobs.known_state import plan_while_running, status_while_running

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def pipeline(*names: str, frozen: tuple[str, ...] = ()) -> Pipeline:
    stages = [StageSpec(name=n, cmd=f"run {n}", frozen=n in frozen) for n in names]
    return Pipeline("p1", "proj", "ml", "pipelines/ml/dvc.yaml", None, PipelineSource.API, stages, 1, None, NOW, NOW)


def run(states: dict[str, StageRunState], pipeline_id: str = "p1") -> Run:
    stages = [StageRun(name=n, command="", state=s) for n, s in states.items()]
    return Run("r1", "proj", pipeline_id, "ml", RunState.RUNNING, RunOptions(), "u", Trigger.API, NOW, stages)


def status(name: str, up_to_date: bool) -> StageStatus:
    changes = [] if up_to_date else [StageChange(ChangeKind.DEP, path="data.csv", state="modified")]
    return StageStatus(name=name, up_to_date=up_to_date, frozen=False, changes=changes)


def test_plan_lists_the_stages_the_run_has_yet_to_finish_and_the_known_changed_ones() -> None:
    live = run({"a": StageRunState.SUCCEEDED, "b": StageRunState.RUNNING, "c": StageRunState.PENDING})
    known = [status("a", False), status("b", False), status("c", True), status("d", False), status("e", True)]

    plan = plan_while_running(pipeline("a", "b", "c", "d", "e"), live, known, force=False)

    assert plan.stale
    assert [s.name for s in plan.stages] == ["a", "b", "c", "d"]
    assert plan.up_to_date == ["e"]
    assert plan.stages[3].changes[0].path == "data.csv"


def test_plan_without_any_known_status_lists_every_stage_but_frozen_ones() -> None:
    plan = plan_while_running(pipeline("a", "b", frozen=("b",)), None, [], force=False)
    assert [s.name for s in plan.stages] == ["a"]
    assert plan.up_to_date == ["b"]


def test_force_plans_every_stage() -> None:
    plan = plan_while_running(pipeline("a", "b"), None, [status("a", True), status("b", True)], force=True)
    assert [(s.name, s.forced) for s in plan.stages] == [("a", True), ("b", True)]


def test_status_marks_what_the_run_has_settled_up_to_date() -> None:
    live = run({"a": StageRunState.SUCCEEDED, "b": StageRunState.PENDING, "c": StageRunState.SKIPPED})
    known = [status("a", False), status("b", True), status("c", True)]

    statuses = status_while_running(pipeline("a", "b", "c"), live, known)

    assert [(s.name, s.up_to_date) for s in statuses] == [("a", True), ("b", False), ("c", True)]
    assert statuses[0].changes == []


def test_another_pipelines_run_does_not_count() -> None:
    live = run({"a": StageRunState.SUCCEEDED}, pipeline_id="other")
    statuses = status_while_running(pipeline("a"), live, [status("a", False)])
    assert statuses[0].up_to_date is False
