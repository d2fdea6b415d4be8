"""Following runs live: one generator per subscription, a snapshot then every event in order, none lost or repeated.

Shaped like dagster-graphql's ``gen_events_for_run``: the history in chunks from the store, then live events from
a watcher, gap-free by sequence number, cleanup in ``finally`` (the hub subscription is an ``async with``). What
makes it gap-free is the order of steps: subscribe (confirmed by Redis) first, then read the snapshot and the
stored events, then stream live events, dropping those already sent. Workers store each event before publishing
it, so anything published after we subscribed is either read from the store or received live, and sequence numbers
tell which; a gap seen live (a dropped message, a reconnection, a number spent by a failed write) is filled from
the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from app.domain.runs import EventType, Run, RunEvent, RunState
from app.events import channels
from app.events.hub import EventHub, Subscription
from app.events.wire import decode_messages, decode_run_notice
from app.repositories.ids import parse_object_id
from app.services.runs import EVENT_PAGE, RunService

# Live events arrive through Redis; the store is read only at the start, after a gap in sequence numbers, after the
# hub reconnected or dropped a message, and as a last resort after a long silence. Reading it on every idle moment
# would cost one query per subscriber per moment.
IDLE_SECONDS = 5.0
SILENCE_CATCH_UP_SECONDS = 30.0
# At most this many queued messages are merged into one update.
MERGED_MESSAGES = 64
# Stored history goes out in chunks of at most this many events, so no message grows without bound (the store is read
# EVENT_PAGE at a time, the recent list in Redis may give more at once).
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

    A live batch is the very tuple the hub's message decoded to for every subscriber of the run (``decode_messages``
    is cached), when this subscriber had seen everything before it: the schema then renders it once for all of them.
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
        """The snapshot, then the events after ``after`` (or after the snapshot): stored history, then live."""
        # The channel is named by the id as workers write it; a malformed id is not found before anything else.
        run_id = str(parse_object_id(run_id, resource="run"))
        async with self.hub.subscribe(channels.run_events(run_id)) as live:
            # One access-checked read: nothing is sent before it passes, and a caller without access leaves the
            # channel at once (the ``async with``).
            snapshot = await self.runs.get(caller=caller, run_id=run_id)
            cursor = snapshot.last_seq if after is None else after
            # A run still QUEUED when read had stored no event: each of its events is stored after it leaves QUEUED
            # and published after that, so all of them come live and the store is not read (nor waited for).
            # Otherwise the first page of history is read before the snapshot goes out, so that the two come
            # together (and a dashboard that starts with many others has its reads done before it is shown live).
            stored = None if snapshot.state == RunState.QUEUED else await self.runs.events_after(snapshot, cursor)
            yield RunUpdateBatch(run=snapshot, events=())
            while True:
                while stored is not None:  # the history, or what a gap left out, page by page as the store gives it
                    for events in _chunks(stored):
                        cursor = events[-1].seq
                        yield RunUpdateBatch(run=None, events=events)
                        if _ends_run(events):
                            return
                    # A full page: more may follow it.
                    stored = await self.runs.events_after(snapshot, cursor) if len(stored) >= EVENT_PAGE else None
                # A finished snapshot ends the stream once everything up to its last seq went out: the run document
                # records the final state before its event is stored, so that event may still be on its way (live).
                if snapshot.state.finished and cursor >= snapshot.last_seq:
                    return
                seen = LiveHighWater()
                async with contextlib.aclosing(_contiguous(live, cursor, seen)) as stream:
                    async for events in stream:
                        cursor = events[-1].seq
                        yield RunUpdateBatch(run=None, events=events)
                        if _ends_run(events):
                            return
                # A gap, a possible miss or a long silence: the store has what came between.
                stored = await self.runs.events_after(snapshot, cursor, seen=seen.seq)

    async def watch(self, *, caller: str, channel: str) -> AsyncIterator[Run]:
        """New runs and their state changes on a pipeline or project channel."""
        async with self.hub.subscribe(channel) as live:
            while True:
                raw = await live.queue.get()
                yield await self.runs.get(caller=caller, run_id=decode_run_notice(raw))


@dataclass(slots=True)
class LiveHighWater:
    """The highest sequence number seen live: an event the store has (workers store before they publish), however
    wide a gap before it (numbers spent by a failed write)."""

    seq: int = 0


async def _contiguous(
    live: Subscription, cursor: int, seen: LiveHighWater
) -> AsyncGenerator[tuple[RunEvent, ...], None]:
    """Live events that follow ``cursor`` without a gap, as they come; ends when the store must be read: at a gap,
    when the hub may have missed a message, or after a long silence."""
    silent = 0.0
    while True:
        batch = await _next_live(live.queue)
        if batch is None:
            silent += IDLE_SECONDS
            if live.may_have_missed() or silent >= SILENCE_CATCH_UP_SECONDS:
                return
            continue
        silent = 0.0
        seen.seq = max([seen.seq, *(e.seq for e in batch)])
        fresh, gap = _after(batch, cursor)
        if fresh:
            cursor = fresh[-1].seq
            yield fresh
        if gap:
            return


def _after(batch: tuple[RunEvent, ...], cursor: int) -> tuple[tuple[RunEvent, ...], bool]:
    """The events of ``batch`` that follow ``cursor`` without a gap, and whether a gap came after them."""
    if batch and batch[0].seq == cursor + 1:
        return batch, False  # the common case: the whole message, shared with every other subscriber
    fresh: list[RunEvent] = []
    for event in batch:
        if event.seq <= cursor:
            continue  # already sent
        if event.seq > cursor + 1:
            return tuple(fresh), True
        fresh.append(event)
        cursor = event.seq
    return tuple(fresh), False


def _chunks(events: list[RunEvent]) -> list[tuple[RunEvent, ...]]:
    return [tuple(events[start : start + STORED_BATCH]) for start in range(0, len(events), STORED_BATCH)]


def _ends_run(events: tuple[RunEvent, ...]) -> bool:
    return any(e.type == EventType.RUN_STATE and e.run_state is not None and e.run_state.finished for e in events)


async def _next_live(live: asyncio.Queue[bytes]) -> tuple[RunEvent, ...] | None:
    """The next message's events, with those of every message queued behind it (a subscriber that fell behind catches
    up in one update instead of one per message); None after IDLE_SECONDS without any."""
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
