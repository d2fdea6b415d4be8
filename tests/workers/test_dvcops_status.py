"""pipeline_status: DVC's reasons, per stage, in repro order."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from conftest import CHAIN, chain_stages

from app.domain.pipelines import ChangeKind, StageChange, StageStatus
from workers.dvcops import pipeline_status, write_pipeline


def by_name(statuses: list[StageStatus]) -> dict[str, StageStatus]:
    return {status.name: status for status in statuses}


def test_never_run(make_workspace: Callable[[], Path]) -> None:
    root = make_workspace()
    write_pipeline(root, CHAIN, chain_stages())

    statuses = pipeline_status(root, CHAIN)

    assert [s.name for s in statuses] == ["prepare", "train", "evaluate"]
    for status in statuses:
        assert not status.up_to_date
        assert status.changes[0] == StageChange(kind=ChangeKind.NEVER_RUN)
    # Before the first run DVC reports a params file as a whole ("new"), not key by key.
    assert StageChange(kind=ChangeKind.PARAM, path="params.yaml", state="new") in statuses[1].changes


def test_up_to_date_after_repro(ran_chain: Path) -> None:
    statuses = pipeline_status(ran_chain, CHAIN)

    assert [(s.name, s.up_to_date, s.changes) for s in statuses] == [
        ("prepare", True, []),
        ("train", True, []),
        ("evaluate", True, []),
    ]


def test_dependency_modified(ran_chain: Path) -> None:
    (ran_chain / "data.csv").write_text("x,y\n1,3\n")

    statuses = by_name(pipeline_status(ran_chain, CHAIN))

    assert statuses["prepare"].changes == [StageChange(kind=ChangeKind.DEP, path="data.csv", state="modified")]
    assert statuses["train"].up_to_date  # DVC compares what is on disk; prepared.csv has not changed yet


def test_output_deleted(ran_chain: Path) -> None:
    (ran_chain / "model.txt").unlink()

    statuses = by_name(pipeline_status(ran_chain, CHAIN))

    assert statuses["train"].changes == [StageChange(kind=ChangeKind.OUT, path="model.txt", state="deleted")]
    assert statuses["evaluate"].changes == [StageChange(kind=ChangeKind.DEP, path="model.txt", state="deleted")]


def test_param_changed(ran_chain: Path) -> None:
    (ran_chain / "params.yaml").write_text("train:\n  lr: 0.5\n")

    statuses = by_name(pipeline_status(ran_chain, CHAIN))

    assert statuses["train"].changes == [
        StageChange(kind=ChangeKind.PARAM, path="params.yaml", key="train.lr", state="modified")
    ]


def test_command_changed(ran_chain: Path) -> None:
    stages = chain_stages()
    stages[1] = dataclasses.replace(stages[1], cmd="cat prepared.csv prepared.csv > model.txt")
    write_pipeline(ran_chain, CHAIN, stages)

    statuses = by_name(pipeline_status(ran_chain, CHAIN))

    assert statuses["train"].changes == [StageChange(kind=ChangeKind.COMMAND)]
    assert statuses["prepare"].up_to_date and statuses["evaluate"].up_to_date


def test_always_changed(ran_chain: Path) -> None:
    stages = chain_stages()
    stages[2] = dataclasses.replace(stages[2], always_changed=True)
    write_pipeline(ran_chain, CHAIN, stages)

    statuses = by_name(pipeline_status(ran_chain, CHAIN))

    assert statuses["evaluate"].changes == [StageChange(kind=ChangeKind.ALWAYS_CHANGED)]


def test_frozen_stage_hides_its_dependency_changes(ran_chain: Path) -> None:
    stages = chain_stages()
    stages[1] = dataclasses.replace(stages[1], frozen=True)
    write_pipeline(ran_chain, CHAIN, stages)
    (ran_chain / "params.yaml").write_text("train:\n  lr: 0.5\n")

    statuses = by_name(pipeline_status(ran_chain, CHAIN))

    assert statuses["train"] == StageStatus(name="train", up_to_date=True, frozen=True, changes=[])
