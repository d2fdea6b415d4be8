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

from app.domain.runs import EventType, Run, RunEvent
from app.events import channels
from app.events.hub import EventHub
from app.events.wire import decode_event, decode_run_notice
from app.services.runs import RunService

# Live events arrive through Redis; MongoDB is read only at the start, after a gap in sequence
# numbers, after the hub reconnected or dropped a message, and as a last resort after a long
# silence. Reading it on every idle moment would cost one query per subscriber per moment.
IDLE_SECONDS = 5.0
SILENCE_CATCH_UP_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class RunUpdate:
    """Either the run's snapshot (``event`` is None) or one event of it."""

    seq: int
    run: Run | None
    event: RunEvent | None


@dataclass(frozen=True, slots=True)
class RunFollower:
    runs: RunService
    hub: EventHub

    async def follow(self, *, caller: str, run_id: str, after: int | None) -> AsyncIterator[RunUpdate]:
        run = await self.runs.get(caller=caller, run_id=run_id)
        async with self.hub.subscribe(channels.run_events(run.id)) as live:
            snapshot = await self.runs.get(caller=caller, run_id=run.id)
            yield RunUpdate(seq=snapshot.last_seq, run=snapshot, event=None)
            cursor = snapshot.last_seq if after is None else after
            finished = snapshot.state.finished
            while True:
                # The store is read at the start, after a gap and when live traffic is idle; otherwise
                # live events follow each other by sequence number without touching MongoDB.
                for stored in await self.runs.events_after(run.id, cursor):
                    cursor = stored.seq
                    finished = finished or _ends_run(stored)
                    yield RunUpdate(seq=stored.seq, run=None, event=stored)
                if finished:
                    return
                silent = 0.0
                while True:
                    event = await _next_live(live.queue)
                    if event is None:
                        silent += IDLE_SECONDS
                        if live.may_have_missed() or silent >= SILENCE_CATCH_UP_SECONDS:
                            break  # read the store
                        continue
                    silent = 0.0
                    if event.seq <= cursor:
                        continue  # already sent
                    if event.seq > cursor + 1:
                        break  # a gap: the store has what came between, in order
                    cursor = event.seq
                    yield RunUpdate(seq=event.seq, run=None, event=event)
                    if _ends_run(event):
                        return

    async def watch(self, *, caller: str, channel: str) -> AsyncIterator[Run]:
        """New runs and their state changes on a pipeline or project channel."""
        async with self.hub.subscribe(channel) as live:
            while True:
                raw = await live.queue.get()
                yield await self.runs.get(caller=caller, run_id=decode_run_notice(raw))


def _ends_run(event: RunEvent) -> bool:
    return event.type == EventType.RUN_STATE and event.run_state is not None and event.run_state.finished


async def _next_live(live: asyncio.Queue[bytes]) -> RunEvent | None:
    try:
        raw = await asyncio.wait_for(live.get(), IDLE_SECONDS)
    except TimeoutError:
        return None
    return decode_event(raw)
