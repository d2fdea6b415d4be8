"""Following runs live: a snapshot, then every event in order, none lost or repeated.

The order of steps is what makes it gap-free: subscribe (confirmed by Redis) first, then read the
snapshot and the stored events, then stream live events, dropping those already sent. Workers
store each event before publishing it, so anything published after we subscribed is either read
from MongoDB or received live, and sequence numbers tell which.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from app.domain.runs import EventType, Run, RunEvent, RunState
from app.events import channels
from app.events.hub import EventHub
from app.events.wire import decode_messages, decode_run_notice
from app.repositories.ids import parse_object_id
from app.services.runs import RunService

# Live events arrive through Redis; MongoDB is read only at the start, after a gap in sequence
# numbers, after the hub reconnected or dropped a message, and as a last resort after a long
# silence. Reading it on every idle moment would cost one query per subscriber per moment.
IDLE_SECONDS = 5.0
SILENCE_CATCH_UP_SECONDS = 30.0
# At most this many queued messages are merged into one update.
MERGED_MESSAGES = 64
# Replayed history goes out in batches of this many events, so no message grows without bound.
STORED_BATCH = 500


@dataclass(frozen=True, slots=True)
class RunUpdate:
    """Either the run's snapshot (``event`` is None) or one event of it."""

    seq: int
    run: Run | None
    event: RunEvent | None


@dataclass(frozen=True, slots=True)
class RunUpdateBatch:
    """The snapshot (first batch only, no events), or consecutive events in order.

    A live batch is the very tuple the hub decoded once for every subscriber of the run, when this
    subscriber had seen everything before it: the schema then renders it once for all of them.
    """

    run: Run | None
    events: tuple[RunEvent, ...]


@dataclass(frozen=True, slots=True)
class RunFollower:
    runs: RunService
    hub: EventHub

    async def follow(self, *, caller: str, run_id: str, after: int | None) -> AsyncIterator[RunUpdate]:
        """One update per event."""
        async for batch in self.follow_batches(caller=caller, run_id=run_id, after=after):
            if batch.run is not None:
                yield RunUpdate(seq=batch.run.last_seq, run=batch.run, event=None)
            for event in batch.events:
                yield RunUpdate(seq=event.seq, run=None, event=event)

    async def follow_batches(self, *, caller: str, run_id: str, after: int | None) -> AsyncIterator[RunUpdateBatch]:
        # Subscribe first, then one access-checked read of the snapshot: nothing is sent before the check passes,
        # and a caller without access leaves the channel at once. The channel is named by the id as workers write it.
        run_id = str(parse_object_id(run_id, resource="run"))
        async with self.hub.subscribe(channels.run_events(run_id)) as live:
            snapshot, stored = await self._start(caller, run_id, after)
            yield RunUpdateBatch(run=snapshot, events=())
            cursor = snapshot.last_seq if after is None else after
            sent_end = False
            while True:
                for start in range(0, len(stored), STORED_BATCH):
                    events = tuple(stored[start : start + STORED_BATCH])
                    cursor = events[-1].seq
                    sent_end = sent_end or any(_ends_run(e) for e in events)
                    yield RunUpdateBatch(run=None, events=events)
                # A finished snapshot ends the stream once everything up to its last seq went out: the run document
                # records a state before its event is stored, so the final event may still be on its way (live).
                if sent_end or (snapshot.state.finished and cursor >= snapshot.last_seq):
                    return
                silent = 0.0
                caught_up = True
                while caught_up:
                    batch = await _next_live(live.queue)
                    if batch is None:
                        silent += IDLE_SECONDS
                        if live.may_have_missed() or silent >= SILENCE_CATCH_UP_SECONDS:
                            break  # read the store
                        continue
                    silent = 0.0
                    fresh, caught_up = _continuing(batch, cursor)
                    if fresh:
                        cursor = fresh[-1].seq
                        yield RunUpdateBatch(run=None, events=fresh)
                        if any(_ends_run(e) for e in fresh):
                            return
                # The store is read at the start, after a gap and when live traffic is idle; otherwise
                # live events follow each other by sequence number without touching MongoDB.
                stored = await self.runs.events_after(run_id, cursor)

    async def _start(self, caller: str, run_id: str, after: int | None) -> tuple[Run, list[RunEvent]]:
        """The access-checked snapshot, then the stored events after the client's cursor (``after``, or else the
        snapshot's last seq), both read once the subscription is confirmed.

        A run still QUEUED when read had stored no event: each of its events is stored after it leaves QUEUED, and
        published after that, so every one of them comes live and the store is not read. The store is not read
        while access is checked either: on FerretDB's SQLite backend that read scans every stored event, and one
        left running for a queued run only slows the worker starting it.
        """
        snapshot = await self.runs.get(caller=caller, run_id=run_id)
        if snapshot.state == RunState.QUEUED:
            return snapshot, []
        return snapshot, await self.runs.events_after(run_id, snapshot.last_seq if after is None else after)

    async def watch(self, *, caller: str, channel: str) -> AsyncIterator[Run]:
        """New runs and their state changes on a pipeline or project channel."""
        async with self.hub.subscribe(channel) as live:
            while True:
                raw = await live.queue.get()
                yield await self.runs.get(caller=caller, run_id=decode_run_notice(raw))


def _continuing(batch: tuple[RunEvent, ...], cursor: int) -> tuple[tuple[RunEvent, ...], bool]:
    """The events of ``batch`` that follow ``cursor`` without a gap, and False when a gap came after them."""
    if batch and batch[0].seq == cursor + 1:
        return batch, True  # the common case: the whole message, shared with every other subscriber
    fresh: list[RunEvent] = []
    for event in batch:
        if event.seq <= cursor:
            continue  # already sent
        if event.seq > cursor + 1:
            return tuple(fresh), False  # the store has what came between, in order
        fresh.append(event)
        cursor = event.seq
    return tuple(fresh), True


def _ends_run(event: RunEvent) -> bool:
    return event.type == EventType.RUN_STATE and event.run_state is not None and event.run_state.finished


async def _next_live(live: asyncio.Queue[bytes]) -> tuple[RunEvent, ...] | None:
    """The next message's events, with those of every message queued behind it: a subscriber that fell behind
    catches up in one update instead of one per message."""
    if live.empty():
        try:
            raws = [await asyncio.wait_for(live.get(), IDLE_SECONDS)]
        except TimeoutError:
            return None
    else:
        # A busy run's subscriber mostly finds its next message waiting: no timer (wait_for's task) for it.
        raws = [live.get_nowait()]
    while len(raws) < MERGED_MESSAGES and not live.empty():
        raws.append(live.get_nowait())
    return decode_messages(tuple(raws))
