"""RunRecorder.claim then announce: one claim of the run numbers its RUNNING event, which is stored and then
published."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

from app.domain.runs import EventType, Run, RunEvent, RunOptions, RunState, StageRun, StageRunState, Trigger
from app.repositories.events import EventRepository
from app.repositories.runs import RunRepository
from tests.unit.test_recorder_batches import Redis
from workers.runs.recorder import RunRecorder

NOW = datetime(2026, 1, 1, tzinfo=UTC)
STAGES = [StageRun(name="a", command="true", state=StageRunState.PENDING)]
QUEUED = Run("r1", "proj", "p1", "ml", RunState.QUEUED, RunOptions(), "u", Trigger.API, NOW, STAGES)


class Runs:
    """Answers claims as the repository does: the run after the claim, or None when it is no longer queued."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.claims: list[str] = []

    async def claim(self, run_id: str, *, worker: str, at: datetime) -> Run | None:
        self.claims.append(worker)
        if self.run.state != RunState.QUEUED:
            return None
        self.run = replace(self.run, state=RunState.RUNNING, last_seq=self.run.last_seq + 1, started_at=at)
        return self.run


class Store:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.stored: list[RunEvent] = []
        self.published_when_stored: list[int] = []

    async def append_many(self, events: list[RunEvent]) -> None:
        self.published_when_stored.append(len(self.redis.published))
        self.stored.extend(events)


async def start(runs: Runs, store: Store) -> RunRecorder | None:
    recorder = await RunRecorder.claim(
        "r1",
        worker="w1",
        runs=cast(RunRepository, runs),
        events=cast(EventRepository, store),
        redis=cast(Any, store.redis),
    )
    if recorder is not None:
        await recorder.announce()
    return recorder


async def test_a_queued_run_is_claimed_and_its_running_event_stored_then_published() -> None:
    redis = Redis()
    runs, store = Runs(QUEUED), Store(redis)
    recorder = await start(runs, store)

    assert recorder is not None and recorder.run.state == RunState.RUNNING
    assert [(e.seq, e.type, e.run_state) for e in store.stored] == [(1, EventType.RUN_STATE, RunState.RUNNING)]
    assert store.published_when_stored == [0] and redis.published == [[1]], "stored first, then published"
    assert recorder.stages == {"a": STAGES[0]}
    await recorder.log("a", "next\n")
    assert [e.seq for e in store.stored] == [1, 2], "later events follow the claimed number"


async def test_the_running_event_takes_the_number_after_the_runs_last() -> None:
    redis = Redis()
    runs, store = Runs(replace(QUEUED, last_seq=4)), Store(redis)
    recorder = await start(runs, store)

    assert recorder is not None and recorder.seq == 5
    assert [e.seq for e in store.stored] == [5]


async def test_a_run_no_longer_queued_is_left_alone() -> None:
    redis = Redis()
    runs, store = Runs(replace(QUEUED, state=RunState.CANCELLED)), Store(redis)

    assert await start(runs, store) is None
    assert runs.claims == ["w1"] and store.stored == [] and redis.published == []
