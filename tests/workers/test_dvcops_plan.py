"""dry_run_plan, and the invariant against the real `dvc repro` that runs right after it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from conftest import CHAIN, chain_stages, run_dvc

from app.domain.errors import InvalidInput
from app.domain.pipelines import ChangeKind, DryRunPlan, PlanCertainty, StageChange
from workers.dvcops import dry_run_plan, write_pipeline

WILL, IF_UP = PlanCertainty.WILL_RUN, PlanCertainty.IF_UPSTREAM_CHANGES


def summary(plan: DryRunPlan) -> list[tuple[str, PlanCertainty, list[str]]]:
    return [(s.name, s.certainty, s.upstream) for s in plan.stages]


def ran_stages(repro_output: str) -> set[str]:
    return set(re.findall(r"Running stage '(?:[^']*:)?([^':]+)'", repro_output))


def test_first_input_changed_plans_the_whole_chain(ran_chain: Path) -> None:
    (ran_chain / "data.csv").write_text("x,y\n1,4\n")

    plan = dry_run_plan(ran_chain, CHAIN, force=False, targets=[], downstream=False)

    assert summary(plan) == [("prepare", WILL, []), ("train", IF_UP, ["prepare"]), ("evaluate", IF_UP, ["train"])]
    assert plan.stages[0].changes == [StageChange(kind=ChangeKind.DEP, path="data.csv", state="modified")]
    assert plan.up_to_date == []


def test_nothing_changed_plans_nothing(ran_chain: Path) -> None:
    plan = dry_run_plan(ran_chain, CHAIN, force=False, targets=[], downstream=False)

    assert plan == DryRunPlan(stages=[], up_to_date=["prepare", "train", "evaluate"])


def test_force_runs_every_selected_stage(ran_chain: Path) -> None:
    plan = dry_run_plan(ran_chain, CHAIN, force=True, targets=[], downstream=False)

    assert [(s.name, s.certainty, s.forced) for s in plan.stages] == [
        ("prepare", WILL, True),
        ("train", WILL, True),
        ("evaluate", WILL, True),
    ]


def test_targets_stop_at_the_target(ran_chain: Path) -> None:
    (ran_chain / "data.csv").write_text("x,y\n1,5\n")

    plan = dry_run_plan(ran_chain, CHAIN, force=False, targets=["train"], downstream=False)

    assert summary(plan) == [("prepare", WILL, []), ("train", IF_UP, ["prepare"])]


def test_downstream_starts_at_the_target(ran_chain: Path) -> None:
    (ran_chain / "params.yaml").write_text("train:\n  lr: 0.7\n")
    (ran_chain / "data.csv").write_text("x,y\n1,6\n")  # prepare is stale too, but not selected

    plan = dry_run_plan(ran_chain, CHAIN, force=False, targets=["train"], downstream=True)

    assert summary(plan) == [("train", WILL, []), ("evaluate", IF_UP, ["train"])]


def test_frozen_stage_is_never_run_and_shields_what_follows(ran_chain: Path) -> None:
    stages = chain_stages()
    stages[1] = dataclasses.replace(stages[1], frozen=True)
    write_pipeline(ran_chain, CHAIN, stages)
    (ran_chain / "data.csv").write_text("x,y\n1,7\n")

    plan = dry_run_plan(ran_chain, CHAIN, force=False, targets=[], downstream=False)

    assert summary(plan) == [("prepare", WILL, [])]
    assert plan.up_to_date == ["train", "evaluate"]


def test_unknown_targets_are_rejected(ran_chain: Path) -> None:
    with pytest.raises(InvalidInput) as raised:
        dry_run_plan(ran_chain, CHAIN, force=False, targets=["train", "nope"], downstream=False)

    assert [(i.path, i.stage) for i in raised.value.issues] == [("targets[1]", "nope")]


@pytest.mark.parametrize(
    ("changed_file", "content", "expected_will_run"),
    [("data.csv", "x,y\n2,2\n", {"prepare"}), ("params.yaml", "train:\n  lr: 0.9\n", {"train"})],
)
def test_real_repro_stays_within_the_plan(
    ran_chain: Path, changed_file: str, content: str, expected_will_run: set[str]
) -> None:
    (ran_chain / changed_file).write_text(content)
    plan = dry_run_plan(ran_chain, CHAIN, force=False, targets=[], downstream=False)
    will_run = {s.name for s in plan.stages if s.certainty is WILL}
    assert will_run == expected_will_run

    ran = ran_stages(run_dvc(ran_chain, "repro", CHAIN))

    assert will_run <= ran
    assert ran <= {s.name for s in plan.stages}
