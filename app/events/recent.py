"""A run's most recent event messages, kept in Redis beside their publication: catching up without MongoDB.

A subscriber that starts, or falls behind, reads the events after its cursor. MongoDB has them all, but on
FerretDB's SQLite backend that query decodes every stored event of every run, and even on MongoDB it is a round trip
per subscriber. So each published message is also pushed onto a short Redis list in the same transaction as its
publication, after it was stored (the publisher stores first). The list is a cache, never the record:

- it is used only when it holds every event after the cursor without a hole (its first event at most cursor + 1,
  numbers consecutive), else the caller reads MongoDB. Redis losing the list, a failed push, a trimmed start or a
  number spent by a failed batch all fall back that way;
- what it returns is a prefix of what was stored when it was read, as a MongoDB read then would be: a message
  stored but not yet pushed is published with its push, and the caller subscribed before reading.

Bounded: the last RECENT_MESSAGES messages of a run, none over RECENT_MESSAGE_BYTES (a hole, so a fallback), gone
RECENT_TTL_SECONDS after the run's last message.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from app.domain.runs import RunEvent
from app.events import channels
from app.events.wire import decode_events

RECENT_MESSAGES = 64
RECENT_MESSAGE_BYTES = 32 * 1024
RECENT_TTL_SECONDS = 15 * 60


def push_recent(pipe: Pipeline, run_id: str, message: str) -> None:
    """Queue, on a transaction that also publishes ``message``, its push onto the run's recent list."""
    key = channels.run_recent(run_id)
    if len(message) <= RECENT_MESSAGE_BYTES:
        pipe.rpush(key, message)
        pipe.ltrim(key, -RECENT_MESSAGES, -1)
    else:
        # Too big to keep: the list must not look complete without it.
        pipe.delete(key)
    pipe.expire(key, RECENT_TTL_SECONDS)


async def recent_events_after(redis: Redis, run_id: str, seq: int) -> list[RunEvent] | None:
    """Every event after ``seq`` from the recent list, or None when the list cannot vouch for all of them."""
    raws: list[bytes] = await redis.lrange(channels.run_recent(run_id), 0, -1)  # type: ignore[misc]
    events = [event for raw in raws for event in decode_events(raw)]
    return events_if_complete(events, seq)


def events_if_complete(events: list[RunEvent], seq: int) -> list[RunEvent] | None:
    """``events`` after ``seq`` if they leave no hole after ``seq``; None otherwise."""
    if not events or events[0].seq > seq + 1:
        return None
    first = events[0].seq
    if any(event.seq != first + index for index, event in enumerate(events)):
        return None
    return events[max(0, seq + 1 - first) :]
