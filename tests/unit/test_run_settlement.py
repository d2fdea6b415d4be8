"""Settling a run's stages, and the RUN_FAULTS test hook's reading of its setting."""

from __future__ import annotations

import pytest

from app.domain.runs import StageRun, StageRunState
from app.services.run_settlement import settled_stages
from workers.runs import faults


def stage(name: str, state: StageRunState) -> StageRun:
    return StageRun(name=name, command="true", state=state)


def test_unfinished_stages_end_and_finished_ones_stay() -> None:
    stages = [
        stage("done", StageRunState.SUCCEEDED),
        stage("skipped", StageRunState.SKIPPED),
        stage("running", StageRunState.RUNNING),
        stage("pending", StageRunState.PENDING),
    ]

    settled = settled_stages(stages, running_to=StageRunState.CANCELLED, error="cancelled by request")

    assert [(s.name, s.state, s.error) for s in settled] == [
        ("done", StageRunState.SUCCEEDED, None),
        ("skipped", StageRunState.SKIPPED, None),
        ("running", StageRunState.CANCELLED, "cancelled by request"),
        ("pending", StageRunState.NOT_RUN, "cancelled by request"),
    ]
    assert settled[2].finished_at is not None
    assert all(s.state.finished for s in settled)


def test_run_faults_name_a_step_per_pipeline() -> None:
    parsed = faults.parse({"RUN_FAULTS": "a=plan, b=recording,"})

    assert parsed == {"a": "plan", "b": "recording"}
    assert faults.parse({}) == {}


def test_an_unknown_fault_step_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown step 'nowhere'"):
        faults.parse({"RUN_FAULTS": "a=nowhere"})


def test_without_run_faults_nothing_is_injected() -> None:
    for step in faults.STEPS:
        faults.inject("any", step)
