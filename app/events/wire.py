"""JSON encoding of run events for Redis: one message carries a batch of consecutive events."""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

from app.domain.runs import RunEvent


def encode_events(events: list[RunEvent]) -> str:
    return json.dumps([_encodable(e) for e in events])


@lru_cache(maxsize=256)
def decode_events(raw: bytes) -> tuple[RunEvent, ...]:
    """The events of one message, in order.

    Cached: the hub hands the same message to every subscriber of a run, so it is decoded once, not once per
    subscriber (the events are immutable).
    """
    return tuple(_decoded(item) for item in json.loads(raw))


@lru_cache(maxsize=256)
def decode_messages(raws: tuple[bytes, ...]) -> tuple[RunEvent, ...]:
    """The events of consecutive messages, as one tuple.

    Cached like ``decode_events``: subscribers that took the same messages off their queues at once (they all fell
    behind together) get the very same tuple, which the schema then renders once for all of them.
    """
    if len(raws) == 1:
        return decode_events(raws[0])
    return tuple(event for raw in raws for event in decode_events(raw))


def _encodable(event: RunEvent) -> dict[str, Any]:
    data = event.to_dict()
    data["at"] = event.at.isoformat()
    return data


def _decoded(data: dict[str, Any]) -> RunEvent:
    data["at"] = datetime.fromisoformat(data["at"])
    return RunEvent.from_dict(data)


def encode_run_notice(run_id: str, state: str) -> str:
    return json.dumps({"run_id": run_id, "state": state})


def decode_run_notice(raw: str | bytes) -> str:
    run_id: str = json.loads(raw)["run_id"]
    return run_id
