"""The event log of runs: every state change and log chunk, numbered per run from 1 without gaps."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from app.db import Database, Document
from app.domain.runs import EventType, LogChunk, RunEvent

T = TypeVar("T")


class SharedRead(Generic[T]):
    """One query at a time for many concurrent callers asking the same thing.

    A caller never gets the result of a query that had already started when it asked (that result could predate
    what the caller must see, e.g. an event stored just before a subscriber subscribed): callers that arrive while
    a query is in flight wait for the next one, which starts when the running one ends and serves all of them.
    So N simultaneous callers cost at most two queries, and each result is read after its caller asked.
    """

    def __init__(self, query: Callable[[], Awaitable[T]], on_idle: Callable[[], object]) -> None:
        self._query = query
        self._on_idle = on_idle
        self._driver: asyncio.Task[None] | None = None
        self._waiting: asyncio.Future[T] | None = None
        """The result of the query not started yet, for everyone who asked since the last one started."""

    async def join(self) -> T:
        if self._waiting is None:
            loop = asyncio.get_running_loop()
            self._waiting = loop.create_future()
            if self._driver is None:
                self._driver = loop.create_task(self._drive())
        # A caller that gives up (a subscriber that left) must not cancel the query the others wait for.
        return await asyncio.shield(self._waiting)

    async def _drive(self) -> None:
        current: asyncio.Future[T] | None = None
        try:
            while self._waiting is not None:
                # From here on, new callers wait for the next query: this one may start before they asked.
                current, self._waiting = self._waiting, None
                current.add_done_callback(_retrieve)
                try:
                    value = await self._query()
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # handed to every caller of this query
                    current.set_exception(error)
                else:
                    current.set_result(value)
        except asyncio.CancelledError:
            for waiting in (current, self._waiting):
                if waiting is not None and not waiting.done():
                    waiting.cancel()
            raise
        finally:
            self._driver = None
            self._waiting = None
            self._on_idle()


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark an error as seen: when every caller of a failed query has left, nobody else will look at it."""
    if not future.cancelled():
        future.exception()


class EventRepository:
    def __init__(self, db: Database) -> None:
        self._collection = db.run_events
        self._reads: dict[tuple[str, int, int], SharedRead[list[RunEvent]]] = {}

    async def append_many(self, events: list[RunEvent]) -> None:
        """Consecutive events in one ordered write: a failure leaves a prefix stored, never a gap."""
        await self._collection.insert_many([e.to_dict() for e in events], ordered=True)

    async def after(self, run_id: str, *, seq: int, limit: int = 500) -> list[RunEvent]:
        """The run's events after ``seq``, in order, at most ``limit``, as stored at some moment after the call.

        Concurrent calls with the same arguments share one query (see ``SharedRead``): when many subscribers of
        one run start or catch up together they all ask for the same events, and a store that scans for every
        query (FerretDB's SQLite backend pushes none of these filters down) would otherwise do N scans.
        """
        key = (run_id, seq, limit)
        read = self._reads.get(key)
        if read is None:
            # In the map exactly while its queries run: it leaves when the last one ends, with no caller waiting.
            read = self._reads[key] = SharedRead(
                lambda: self._after(run_id, seq=seq, limit=limit), lambda: self._reads.pop(key, None)
            )
        return list(await read.join())

    async def _after(self, run_id: str, *, seq: int, limit: int) -> list[RunEvent]:
        docs = (
            await self._collection.find({"run_id": run_id, "seq": {"$gt": seq}}).sort("seq", 1).limit(limit).to_list()
        )
        return [RunEvent.from_dict(d) for d in docs]

    async def last_seq(self, run_id: str) -> int:
        docs = await self._collection.find({"run_id": run_id}, {"seq": 1}).sort("seq", -1).limit(1).to_list()
        return int(docs[0]["seq"]) if docs else 0

    async def log_window(self, run_id: str, *, stage: str, offset: int, limit_bytes: int) -> tuple[list[LogChunk], int]:
        """The stage's stored chunks that cover bytes ``offset`` to ``offset + limit_bytes`` (plus a few bytes, so the
        caller can finish a character), starting with the chunk that holds ``offset``; and where the stored log ends.

        Chunks are contiguous (each starts where the one before ended), so the chunk holding ``offset`` is the last
        one starting at or before it. When the chunks read run out before the page is full (a log's tail, what a
        follower reads), the last of them ends the log: the end needs no query of its own then (two queries instead
        of three; on FerretDB v1, which sorts in Go, each reads all of the stage's chunks).
        """
        base: Document = {"run_id": run_id, "type": EventType.LOG.value, "stage": stage}
        holding = await self._collection.find(base | {"offset": {"$lte": offset}}).sort("offset", -1).limit(1).to_list()
        chunks = [LogChunk(stage=stage, offset=int(d["offset"]), text=d["text"]) for d in holding]
        covered = _end_of(chunks[-1]) if chunks else offset
        wanted = offset + limit_bytes + 4  # a UTF-8 character has at most 4 bytes
        end: int | None = None
        if covered < wanted:
            cursor = self._collection.find(base | {"offset": {"$gt": offset}}).sort("offset", 1)
            async for doc in cursor:
                chunk = LogChunk(stage=stage, offset=int(doc["offset"]), text=doc["text"])
                chunks.append(chunk)
                covered = _end_of(chunk)
                if covered >= wanted:
                    break
            else:  # read to the last stored chunk
                end = _end_of(chunks[-1]) if chunks else 0
            await cursor.close()
        if end is None:
            last = await self._collection.find(base).sort("offset", -1).limit(1).to_list()
            end = int(last[0]["offset"]) + len(last[0]["text"].encode()) if last else 0
        if offset >= end:
            return [], end
        return chunks, end

    async def delete_for_runs(self, run_ids: list[str]) -> None:
        await self._collection.delete_many({"run_id": {"$in": run_ids}})


def _end_of(chunk: LogChunk) -> int:
    return chunk.offset + len(chunk.text.encode())
