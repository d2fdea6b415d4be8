"""How a runUpdates stream starts: the order of subscribe and reads, what is read, and when it may end.

The hub and the run service are plain objects that record what was asked, in which order; the real ones are covered
end to end in tests/api/.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import cast

import pytest

from app.domain.errors import NotFound
from app.domain.runs import EventType, Run, RunEvent, RunOptions, RunState, Trigger
from app.events.hub import EventHub
from app.events.wire import encode_events
from app.services.run_updates import RunFollower, RunUpdateBatch
from app.services.runs import RunService

RUN_ID = "6650f0f0f0f0f0f0f0f0f0f0"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
QUEUED = Run(RUN_ID, "proj", "pipe", "ml", RunState.QUEUED, RunOptions(), "u", Trigger.API, NOW, [])
DEADLINE_SECONDS = 5.0


def state_event(seq: int, state: RunState) -> RunEvent:
    return RunEvent(run_id=RUN_ID, seq=seq, type=EventType.RUN_STATE, at=NOW, run_state=state)


@dataclass
class Live:
    queue: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)

    def may_have_missed(self) -> bool:
        return False

    def publish(self, *events: RunEvent) -> None:
        self.queue.put_nowait(encode_events(list(events)).encode())


@dataclass
class Hub:
    log: list[str]
    live: Live = field(default_factory=Live)
    open: int = 0

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Live]:
        self.log.append(f"subscribe {channel}")
        self.open += 1
        try:
            yield self.live
        finally:
            self.open -= 1


@dataclass
class Runs:
    """The snapshot and stored events a RunService would answer; ``allowed`` False answers as for a non-member."""

    log: list[str]
    snapshot: Run
    stored: list[RunEvent] = field(default_factory=list)
    allowed: bool = True
    store_stuck: bool = False
    """Reads of the store never answer (a slow store): whoever waits on one waits until the test's deadline."""

    async def get(self, *, caller: str, run_id: str) -> Run:
        self.log.append("snapshot")
        await asyncio.sleep(0)  # a round trip: lets a concurrent read start
        if not self.allowed:
            raise NotFound("run", run_id)
        return self.snapshot

    async def events_after(self, run: Run, seq: int, *, seen: int = 0) -> list[RunEvent]:
        self.log.append(f"events after {seq}")
        await asyncio.sleep(0)
        if self.store_stuck:
            await asyncio.Event().wait()
        return [e for e in self.stored if e.seq > seq]


def follower(runs: Runs, hub: Hub) -> RunFollower:
    return RunFollower(runs=cast(RunService, runs), hub=cast(EventHub, hub))


async def collect(stream: AsyncIterator[RunUpdateBatch], until: int) -> list[RunUpdateBatch]:
    """Batches until the stream ends or ``until`` batches arrived."""
    batches: list[RunUpdateBatch] = []
    async with asyncio.timeout(DEADLINE_SECONDS):
        async for batch in stream:
            batches.append(batch)
            if len(batches) == until:
                break
    return batches


def seqs(batches: list[RunUpdateBatch]) -> list[int]:
    return [e.seq for b in batches for e in b.events]


@pytest.mark.parametrize("after", [None, 0])
async def test_a_queued_run_is_followed_live_without_waiting_for_the_store(after: int | None) -> None:
    log: list[str] = []
    runs, hub = Runs(log, QUEUED, store_stuck=True), Hub(log)
    stream = follower(runs, hub).follow_batches(caller="u", run_id=RUN_ID, after=after)
    first = await collect(stream, until=1)
    hub.live.publish(state_event(1, RunState.RUNNING))
    hub.live.publish(state_event(2, RunState.SUCCEEDED))
    rest = await collect(stream, until=10)

    assert first[0].run == QUEUED
    assert seqs(rest) == [1, 2], "every event of a run queued when read comes live, in order, once"
    assert log[0] == f"subscribe run-events:{RUN_ID}", "subscribed before anything is read"
    assert log.count("snapshot") == 1, "one access-checked read"
    assert not [s for s in log if s.startswith("events")], "no read of the store"


async def test_events_after_the_cursor_are_read_after_the_snapshot_and_sent_after_it() -> None:
    log: list[str] = []
    running = replace(QUEUED, state=RunState.RUNNING, last_seq=1)
    runs, hub = Runs(log, running, stored=[state_event(1, RunState.RUNNING)]), Hub(log)
    stream = follower(runs, hub).follow_batches(caller="u", run_id=RUN_ID, after=0)
    batches = await collect(stream, until=2)
    hub.live.publish(state_event(1, RunState.RUNNING), state_event(2, RunState.SUCCEEDED))  # 1 again: dropped
    batches += await collect(stream, until=10)

    assert batches[0].run == running and not batches[0].events, "the snapshot comes first"
    assert seqs(batches) == [1, 2], "stored, then live, none repeated"
    assert log[:3] == [f"subscribe run-events:{RUN_ID}", "snapshot", "events after 0"], "in this order"


async def test_a_finished_snapshot_waits_for_its_final_event_when_it_is_not_stored_yet() -> None:
    # The run document says SUCCEEDED (seq 2) but the event is still being stored: it is published after, live.
    log: list[str] = []
    finished = replace(QUEUED, state=RunState.SUCCEEDED, last_seq=2)
    runs, hub = Runs(log, finished, stored=[state_event(1, RunState.RUNNING)]), Hub(log)
    stream = follower(runs, hub).follow_batches(caller="u", run_id=RUN_ID, after=0)
    batches = await collect(stream, until=2)
    hub.live.publish(state_event(2, RunState.SUCCEEDED))
    batches += await collect(stream, until=10)

    assert seqs(batches) == [1, 2], "the stream ends with the final event, not before it"


async def test_a_finished_run_whose_events_are_all_stored_ends_after_them() -> None:
    log: list[str] = []
    finished = replace(QUEUED, state=RunState.SUCCEEDED, last_seq=2)
    stored = [state_event(1, RunState.RUNNING), state_event(2, RunState.SUCCEEDED)]
    runs, hub = Runs(log, finished, stored=stored), Hub(log)
    batches = await collect(follower(runs, hub).follow_batches(caller="u", run_id=RUN_ID, after=None), until=10)

    assert [b.run for b in batches] == [finished], "the snapshot alone: nothing after its last seq"
    assert hub.open == 0


@pytest.mark.parametrize("after", [None, 0])
async def test_without_access_nothing_is_sent_and_the_subscription_is_left(after: int | None) -> None:
    log: list[str] = []
    runs = Runs(log, replace(QUEUED, state=RunState.RUNNING, last_seq=1), [state_event(1, RunState.RUNNING)], False)
    hub = Hub(log)
    stream = follower(runs, hub).follow_batches(caller="stranger", run_id=RUN_ID, after=after)
    with pytest.raises(NotFound):
        await collect(stream, until=10)
    assert hub.open == 0


async def test_a_malformed_run_id_is_not_found_before_any_subscription() -> None:
    log: list[str] = []
    runs, hub = Runs(log, QUEUED), Hub(log)
    with pytest.raises(NotFound):
        await collect(follower(runs, hub).follow_batches(caller="u", run_id="nope", after=None), until=1)
    assert log == []
