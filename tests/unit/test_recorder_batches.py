"""Pure logic of the recorder's batching: order, no event lost or repeated, failures reach their callers.

The store and Redis are plain objects here (what they do is covered end to end in tests/api/); the point is the
recorder's own bookkeeping when many callers emit while a batch is being written.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from app.domain.runs import Run, RunEvent, RunOptions, RunState, StageRun, StageRunState, Trigger
from app.repositories.events import EventRepository
from app.repositories.runs import RunRepository
from workers.runs.recorder import RunRecorder

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class SlowStore:
    """Writes take until the test opens the gate; a write carrying one of ``failing`` fails."""

    def __init__(self, failing: frozenset[int] = frozenset()) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.failing = failing

    async def append_many(self, events: list[RunEvent]) -> None:
        await self.gate.wait()
        if self.failing & {e.seq for e in events}:
            raise ConnectionError("store down")
        self.batches.append([e.seq for e in events])


class Pipe:
    def __init__(self, published: list[list[int]]) -> None:
        self.published = published
        self.messages: list[list[int]] = []

    async def __aenter__(self) -> Pipe:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    # The run's recent-message list (app.events.recent) is not what these tests look at.
    def rpush(self, key: str, message: str) -> None:
        pass

    def ltrim(self, key: str, start: int, end: int) -> None:
        pass

    def expire(self, key: str, seconds: int) -> None:
        pass

    def delete(self, key: str) -> None:
        pass

    def publish(self, channel: str, message: str) -> None:
        if channel.startswith("run:") or "events" in channel:
            self.messages.append([e["seq"] for e in json.loads(message) if isinstance(e, dict) and "seq" in e])

    async def execute(self) -> None:
        self.published.extend(self.messages)


class Redis:
    def __init__(self) -> None:
        self.published: list[list[int]] = []

    def pipeline(self, transaction: bool) -> Pipe:
        return Pipe(self.published)


async def let_started_tasks_run() -> None:
    """Give the tasks already started a few turns of the event loop (no time passes): each reaches its next wait."""
    for _ in range(5):
        await asyncio.sleep(0)  # one turn


def recorder(store: SlowStore, redis: Redis) -> RunRecorder:
    stages = [StageRun(name=n, command="", state=StageRunState.RUNNING) for n in ("a", "b")]
    run = Run("r1", "proj", "p1", "ml", RunState.RUNNING, RunOptions(), "u", Trigger.API, NOW, stages)
    return RunRecorder.for_run(run, cast(RunRepository, None), cast(EventRepository, store), cast(Any, redis))


async def test_events_emitted_while_a_batch_is_written_go_out_together_in_order() -> None:
    store, redis = SlowStore(), Redis()
    rec = recorder(store, redis)
    first = asyncio.create_task(rec.log("a", "one\n"))
    await let_started_tasks_run()  # the first write is under way (held at the gate)
    others = [asyncio.create_task(rec.log(stage, f"{i}\n")) for i in range(10) for stage in ("a", "b")]
    await let_started_tasks_run()
    store.gate.set()
    await asyncio.gather(first, *others)

    assert store.batches == [[1], list(range(2, 22))], "one write for the event that came first, one for the rest"
    assert redis.published == store.batches, "published as stored, batch after batch"


async def test_a_failed_batch_fails_every_caller_whose_event_it_carried_and_no_other() -> None:
    store, redis = SlowStore(failing=frozenset({3})), Redis()
    rec = recorder(store, redis)
    first = asyncio.create_task(rec.log("a", "stored\n"))
    await let_started_tasks_run()
    doomed = [asyncio.create_task(rec.log("b", f"{i}\n")) for i in range(3)]
    await let_started_tasks_run()
    store.gate.set()
    await first
    results = await asyncio.gather(*doomed, return_exceptions=True)

    assert all(isinstance(r, ConnectionError) for r in results), results
    await rec.log("a", "after\n")  # the store is back: later events are written again
    assert store.batches == [[1], [5]]
    assert redis.published == [[1], [5]], "a batch that could not be stored is never published"


@pytest.mark.parametrize("callers", [1, 7])
async def test_each_caller_returns_only_once_its_event_is_stored(callers: int) -> None:
    store, redis = SlowStore(), Redis()
    rec = recorder(store, redis)
    tasks = [asyncio.create_task(rec.log("a", f"{i}\n")) for i in range(callers)]
    await let_started_tasks_run()
    assert not any(t.done() for t in tasks), "nobody returns before the write"
    store.gate.set()
    await asyncio.gather(*tasks)
    assert sorted(seq for batch in store.batches for seq in batch) == list(range(1, callers + 1))
