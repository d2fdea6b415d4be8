"""Pure logic: what status and plan to answer while a run holds the workspace."""

from __future__ import annotations

from datetime import UTC, datetime

from app.domain.known_state import plan_while_running, status_while_running
from app.domain.pipelines import ChangeKind, Pipeline, PipelineSource, StageChange, StageSpec, StageStatus
from app.domain.runs import Run, RunOptions, RunState, StageRun, StageRunState, Trigger

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


def test_plan_lists_the_stages_the_run_has_yet_to_finish_and_the_known_changed_ones_it_has_not_settled() -> None:
    live = run({"a": StageRunState.SUCCEEDED, "b": StageRunState.RUNNING, "c": StageRunState.PENDING})
    known = [status("a", False), status("b", False), status("c", True), status("d", False), status("e", True)]

    plan = plan_while_running(pipeline("a", "b", "c", "d", "e"), live, known, force=False)

    assert plan.stale
    # `a` was changed before the run, which has since brought it up to date (as the status during the run says).
    assert [s.name for s in plan.stages] == ["b", "c", "d"]
    assert plan.up_to_date == ["a", "e"]
    assert plan.stages[2].changes[0].path == "data.csv"


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


def test_a_known_state_answer_is_dated_by_the_newest_fact_it_reports() -> None:
    from datetime import timedelta

    from app.domain.known_state import known_at

    settled_at = NOW + timedelta(minutes=5)
    live = run({"a": StageRunState.SUCCEEDED, "b": StageRunState.RUNNING})
    live = Run(
        live.id, live.project_id, live.pipeline_id, live.pipeline_name, live.state, live.options, live.triggered_by,
        live.trigger, live.created_at,
        [StageRun(name="a", command="", state=StageRunState.SUCCEEDED, finished_at=settled_at), live.stages[1]],
    )  # fmt: skip
    later = NOW + timedelta(hours=1)

    assert known_at(pipeline("a", "b"), live, NOW, later) == settled_at
    assert known_at(pipeline("a", "b"), run({"a": StageRunState.RUNNING}), NOW, later) == NOW
    assert known_at(pipeline("a", "b"), None, None, later) == later


def test_a_single_item_plan_while_running_lists_only_the_targets_and_their_group() -> None:
    plan = plan_while_running(
        pipeline("prep", "train@0", "train@1"), run({}), [], force=False, targets=("train",), single_item=True
    )

    assert [s.name for s in plan.stages] == ["train@0", "train@1"]
