"""When a run's recent messages may answer a catch-up: only when they hold every event after the cursor."""

from __future__ import annotations

from datetime import UTC, datetime

from app.domain.runs import EventType, RunEvent
from app.events.recent import events_if_complete


def events(*seqs: int) -> list[RunEvent]:
    at = datetime.now(UTC)
    return [RunEvent(run_id="r", seq=seq, type=EventType.LOG, at=at, stage="s", text=str(seq)) for seq in seqs]


def seqs(found: list[RunEvent] | None) -> list[int] | None:
    return None if found is None else [e.seq for e in found]


def test_the_list_answers_when_it_starts_at_or_before_the_next_event_without_holes() -> None:
    assert seqs(events_if_complete(events(1, 2, 3), 0)) == [1, 2, 3]
    assert seqs(events_if_complete(events(4, 5, 6), 3)) == [4, 5, 6]
    assert seqs(events_if_complete(events(4, 5, 6), 5)) == [6]
    # Nothing after the cursor yet, as far as the list knows: what a store read at that moment would say too.
    assert seqs(events_if_complete(events(4, 5, 6), 6)) == []
    assert seqs(events_if_complete(events(4, 5, 6), 9)) == []


def test_the_store_answers_when_the_list_is_empty_trimmed_or_has_a_hole() -> None:
    assert events_if_complete([], 0) is None
    assert events_if_complete(events(5, 6), 3) is None  # 4 is not in it
    assert events_if_complete(events(3, 4, 6), 2) is None  # 5 was never pushed (a failed batch, a lost push)
    assert events_if_complete(events(3, 4, 6), 5) is None
