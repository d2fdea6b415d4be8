"""The recorder of a run that someone else settled (cancelRun, the reaper) records nothing more: its stage changes and
its own end are refused by the document (guarded by RUNNING), so no number is spent and no event stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from app.domain.runs import Run, RunOptions, RunState, StageRun, StageRunState, Trigger
from app.repositories.events import EventRepository
from app.repositories.runs import RunRepository
from tests.unit.test_recorder_batches import Redis
from tests.unit.test_recorder_start import Store
from workers.runs.recorder import RunRecorder

NOW = datetime(2026, 1, 1, tzinfo=UTC)
STAGES = [StageRun(name=n, command="true", state=StageRunState.PENDING) for n in ("a", "pipelines/A/dvc.yaml:b")]


class SettledRuns:
    """A run document that is no longer RUNNING: every guarded write matches nothing."""

    def __init__(self) -> None:
        self.updates: list[tuple[int, str]] = []

    async def update_stage(self, run_id: str, index: int, stage: StageRun, *, seq: int) -> bool:
        self.updates.append((index, stage.name))
        return False

    async def transition(self, run_id: str, **fields: Any) -> Run | None:
        return None


async def test_a_settled_run_records_no_more_stage_changes_nor_its_own_end() -> None:
    run = Run("r1", "proj", "p1", "ml", RunState.RUNNING, RunOptions(), "u", Trigger.API, NOW, STAGES, last_seq=3)
    runs, store = SettledRuns(), Store(Redis())
    recorder = RunRecorder.for_run(run, cast(RunRepository, runs), cast(EventRepository, store), cast(Any, Redis()))

    await recorder.stage("pipelines/A/dvc.yaml:b", StageRunState.RUNNING)
    finished = await recorder.finish(RunState.SUCCEEDED, error=None, outputs_changed=[])

    assert runs.updates == [(1, "pipelines/A/dvc.yaml:b")], "the record is addressed by its position in the list"
    assert finished is None
    assert store.stored == [] and recorder.seq == 3
