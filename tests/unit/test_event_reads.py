"""Concurrent reads of a run's stored events share queries, and never hand a caller a read older than its call.

The collection is a plain object here: its queries see the stored events as of the moment they start and end
when the test opens the gate, so what each caller got and how many queries ran are both observable.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from app.domain.runs import EventType, RunEvent
from app.repositories.events import EventRepository

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def event(run_id: str, seq: int) -> dict[str, Any]:
    return RunEvent(run_id=run_id, seq=seq, type=EventType.LOG, at=NOW, stage="s", text="x", offset=seq).to_dict()


class Cursor:
    def __init__(self, collection: Collection, query: dict[str, Any]) -> None:
        self.collection = collection
        self.query = query
        self.count = 0

    def sort(self, key: str, direction: int) -> Cursor:
        assert (key, direction) == ("seq", 1)
        return self

    def limit(self, count: int) -> Cursor:
        self.count = count
        return self

    async def to_list(self) -> list[dict[str, Any]]:
        self.collection.started += 1
        run_id, after = self.query["run_id"], self.query["seq"]["$gt"]
        seen = [d for d in self.collection.docs if d["run_id"] == run_id and d["seq"] > after][: self.count]
        await self.collection.gate.wait()
        if self.collection.failing:
            raise ConnectionError("store down")
        return seen


class Collection:
    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []
        self.started = 0
        self.gate = asyncio.Event()
        self.failing = False

    def find(self, query: dict[str, Any]) -> Cursor:
        return Cursor(self, query)


def repository() -> tuple[EventRepository, Collection]:
    collection = Collection()
    db = type("Db", (), {"run_events": collection})()
    return EventRepository(cast(Any, db)), collection


async def turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def seqs(events: list[RunEvent]) -> list[int]:
    return [e.seq for e in events]


async def test_simultaneous_callers_share_one_query() -> None:
    events, store = repository()
    store.docs = [event("r", s) for s in range(1, 4)]
    callers = [asyncio.create_task(events.after("r", seq=1)) for _ in range(50)]
    await turns()
    store.gate.set()
    results = await asyncio.gather(*callers)
    assert all(seqs(r) == [2, 3] for r in results)
    assert store.started == 1
    assert events._reads == {}  # nothing kept once the reads are done


async def test_a_caller_never_gets_a_read_that_started_before_it_asked() -> None:
    events, store = repository()
    store.docs = [event("r", 1)]
    early = asyncio.create_task(events.after("r", seq=0))
    await turns()  # the first query has started and sees only event 1
    assert store.started == 1
    store.docs.append(event("r", 2))  # stored (and published) before the later callers ask
    late = [asyncio.create_task(events.after("r", seq=0)) for _ in range(20)]
    await turns()
    assert store.started == 1  # they wait for the next query instead of joining the running one
    store.gate.set()
    assert seqs(await early) == [1]
    assert all(seqs(r) == [1, 2] for r in await asyncio.gather(*late))
    assert store.started == 2


async def test_different_cursors_or_runs_are_different_queries() -> None:
    events, store = repository()
    store.docs = [event("r", s) for s in range(1, 4)] + [event("q", 1)]
    store.gate.set()
    a, b, c = await asyncio.gather(events.after("r", seq=0), events.after("r", seq=2), events.after("q", seq=0))
    assert (seqs(a), seqs(b), seqs(c)) == ([1, 2, 3], [3], [1])
    assert [e.run_id for e in c] == ["q"]


async def test_each_caller_gets_its_own_list() -> None:
    events, store = repository()
    store.docs = [event("r", 1)]
    store.gate.set()
    first, second = await asyncio.gather(events.after("r", seq=0), events.after("r", seq=0))
    first.clear()
    assert seqs(second) == [1]


async def test_a_failed_query_fails_its_callers_and_the_next_read_runs_again() -> None:
    events, store = repository()
    store.docs = [event("r", 1)]
    store.failing = True
    callers = [asyncio.create_task(events.after("r", seq=0)) for _ in range(3)]
    await turns()
    store.gate.set()
    for result in await asyncio.gather(*callers, return_exceptions=True):
        assert isinstance(result, ConnectionError)
    store.failing = False
    assert seqs(await events.after("r", seq=0)) == [1]


async def test_a_caller_that_leaves_does_not_cancel_the_others() -> None:
    events, store = repository()
    store.docs = [event("r", 1)]
    leaving = asyncio.create_task(events.after("r", seq=0))
    staying = asyncio.create_task(events.after("r", seq=0))
    await turns()
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    store.gate.set()
    assert seqs(await staying) == [1]
    assert store.started == 1
