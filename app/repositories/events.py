"""The event log of runs: every state change and log chunk, numbered per run from 1 without gaps.

Each event also names its buckets, top-level strings that FerretDB v1 pushes down to PostgreSQL as an indexed
equality (docs/ferretdb.md): ``seq_bucket`` (the run and ``seq // SEQ_BUCKET``) and, for LOG events, ``log_bucket``
(the run, the stage and ``offset // LOG_BUCKET_BYTES``). FerretDB v1 applies ranges, sorts and limits in Go after
decoding every event the equalities select: reading a few buckets by equality costs what they hold, where
``{run_id, seq: {$gt: n}}`` costs the whole run. The same queries are index reads on MongoDB. Runs created before
the buckets (``Run.events_bucketed`` False) are read with the range queries, as they were stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from pymongo.asynchronous.collection import AsyncCollection

from app.db import Database, Document
from app.domain.runs import EventType, LogChunk, RunEvent

T = TypeVar("T")

SEQ_BUCKET = 128
"""Events per ``seq_bucket``: a catch-up page of EVENT_PAGE (500) reads at most five buckets."""
LOG_BUCKET_BYTES = 16 * 1024
"""Log bytes per ``log_bucket`` (by where a chunk starts): a 64 KiB page reads about five."""
MAX_EMPTY_BUCKETS = 64
"""Buckets walked back from an offset to the chunk holding it (a chunk longer than a bucket leaves the buckets after
its start empty) before reading the stage's whole log instead: chunks of up to 1 MiB stay bucket reads."""


def seq_bucket(run_id: str, seq: int) -> str:
    return f"{run_id}:{seq // SEQ_BUCKET}"


def log_bucket(run_id: str, stage: str, offset: int) -> str:
    # Unambiguous although a stage name may hold ':': the run id is hex, the bucket number digits.
    return f"{run_id}:{stage}:{offset // LOG_BUCKET_BYTES}"


def event_document(event: RunEvent) -> Document:
    """The stored shape of an event: its fields and its buckets."""
    doc: Document = event.to_dict() | {"seq_bucket": seq_bucket(event.run_id, event.seq)}
    if event.type == EventType.LOG and event.stage is not None and event.offset is not None:
        doc["log_bucket"] = log_bucket(event.run_id, event.stage, event.offset)
    return doc


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
        self._reads: dict[tuple[str, int, int, int], SharedRead[list[RunEvent]]] = {}

    async def append_many(self, events: list[RunEvent]) -> None:
        """Consecutive events in one ordered write: a failure leaves a prefix stored, never a gap."""
        await self._collection.insert_many([event_document(e) for e in events], ordered=True)

    async def after(
        self, run_id: str, *, seq: int, limit: int = 500, bucketed: bool = False, exists: int = 0
    ) -> list[RunEvent]:
        """The run's events after ``seq``, in order, at most ``limit``, as stored at some moment after the call.

        ``bucketed`` (the run's ``events_bucketed``): one equality query per bucket of ``seq + 1`` to ``seq + limit``,
        up to the first empty one past ``exists`` (a number the caller knows was given to an event: the run's last
        seq as it read it, or one it saw live). Numbers have no holes unless a write failed (the recorder spends a
        failed batch's numbers): without one that is the page the range query gives; with one, the page stops at
        ``seq + limit`` (fewer events), and a hole wider than the page with ``exists`` beyond it is read past with
        the range query, so a follower never stalls at it.

        Concurrent calls with the same arguments share one query (see ``SharedRead``): when many subscribers of
        one run start or catch up together they all ask for the same events, and a store that scans for every
        query (FerretDB's SQLite backend pushes none of these filters down) would otherwise do N scans.
        """
        exists = max(exists, seq)  # what lies at or before seq is not asked for
        key = (run_id, seq, limit, exists)
        read = self._reads.get(key)
        if read is None:
            # In the map exactly while its queries run: it leaves when the last one ends, with no caller waiting.
            # A run's events are bucketed or not for good, so ``bucketed`` needs no place in the key.
            if bucketed:
                query = lambda: self._bucketed_after(run_id, seq=seq, limit=limit, exists=exists)  # noqa: E731
            else:
                query = lambda: self._after(run_id, seq=seq, limit=limit)  # noqa: E731
            read = self._reads[key] = SharedRead(query, lambda: self._reads.pop(key, None))
        return list(await read.join())

    async def _bucketed_after(self, run_id: str, *, seq: int, limit: int, exists: int) -> list[RunEvent]:
        found: list[Document] = []
        first = seq + 1
        for start in range(first - first % SEQ_BUCKET, seq + limit + 1, SEQ_BUCKET):
            docs = await self._collection.find({"seq_bucket": seq_bucket(run_id, start)}).to_list()
            if not docs and start > exists:
                break  # nothing stored from here on, as far as anyone knows
            found += [d for d in docs if seq < d["seq"] <= seq + limit]
        if not found and exists > seq + limit:
            return await self._after(run_id, seq=seq, limit=limit)  # a hole wider than the page: read past it
        found.sort(key=lambda d: int(d["seq"]))
        return [RunEvent.from_dict(d) for d in found]

    async def _after(self, run_id: str, *, seq: int, limit: int) -> list[RunEvent]:
        docs = (
            await self._collection.find({"run_id": run_id, "seq": {"$gt": seq}}).sort("seq", 1).limit(limit).to_list()
        )
        return [RunEvent.from_dict(d) for d in docs]

    async def last_seq(self, run_id: str) -> int:
        docs = await self._collection.find({"run_id": run_id}, {"seq": 1}).sort("seq", -1).limit(1).to_list()
        return int(docs[0]["seq"]) if docs else 0

    async def log_window(
        self, run_id: str, *, stage: str, offset: int, limit_bytes: int, bucketed: bool = False
    ) -> tuple[list[LogChunk], int | None]:
        """The stage's stored chunks that cover bytes ``offset`` to ``offset + limit_bytes`` (plus a few bytes, so the
        caller can finish a character), starting with the chunk that holds ``offset``; and where the stored log ends
        (None when ``bucketed`` and the chunks fill the page before the end: the end lies past them then).

        Chunks are contiguous (each starts where the one before ended), so the chunk holding ``offset`` is the last
        one starting at or before it. When the chunks read run out before the page is full (a log's tail, what a
        follower reads), the last of them ends the log: the end needs no query of its own then (two queries instead
        of three; on FerretDB v1, which sorts in Go, each reads all of the stage's chunks). ``bucketed``: the chunks
        come from the buckets that hold them (``_BucketedLog``), and a page that fills up does not look for the end.
        """
        wanted = offset + limit_bytes + 4  # a UTF-8 character has at most 4 bytes
        if bucketed:
            window = await _BucketedLog(self._collection, run_id, stage).window(offset, wanted)
            if window is not None:
                return window
        base: Document = {"run_id": run_id, "type": EventType.LOG.value, "stage": stage}
        holding = await self._collection.find(base | {"offset": {"$lte": offset}}).sort("offset", -1).limit(1).to_list()
        chunks = [LogChunk(stage=stage, offset=int(d["offset"]), text=d["text"]) for d in holding]
        covered = _end_of(chunks[-1]) if chunks else offset
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


class _BucketedLog:
    """One read of a stage's log through its ``log_bucket``s, each bucket queried at most once.

    A chunk is in the bucket of the byte it starts at, and chunks are contiguous: the chunk holding an offset is the
    last one starting at or before it (in the offset's bucket, or in the nearest non-empty one before when a long
    chunk spans the offset's bucket), and the chunk after one that ends at ``e`` starts at ``e``, so it is in the
    bucket of ``e`` or nowhere: when that bucket has nothing from ``e`` on, the stored log ends at ``e``.
    """

    def __init__(self, collection: AsyncCollection[Document], run_id: str, stage: str) -> None:
        self._collection = collection
        self._run_id = run_id
        self._stage = stage
        self._read: dict[int, list[LogChunk]] = {}

    async def _bucket(self, number: int) -> list[LogChunk]:
        if number not in self._read:
            key = log_bucket(self._run_id, self._stage, number * LOG_BUCKET_BYTES)
            docs = await self._collection.find({"log_bucket": key}).to_list()
            chunks = [LogChunk(stage=self._stage, offset=int(d["offset"]), text=d["text"]) for d in docs]
            self._read[number] = sorted(chunks, key=lambda c: c.offset)
        return self._read[number]

    async def _holding(self, offset: int) -> LogChunk | None:
        """The last chunk starting at or before ``offset``; None when the log is empty or the walk back too long."""
        number = offset // LOG_BUCKET_BYTES
        for bucket in range(number, max(-1, number - MAX_EMPTY_BUCKETS), -1):
            before = [c for c in await self._bucket(bucket) if c.offset <= offset]
            if before:
                return before[-1]
            if not await self._bucket(0):
                break  # a log starts at byte 0: a stage that printed nothing is not walked back through
        return None

    async def window(self, offset: int, wanted: int) -> tuple[list[LogChunk], int | None] | None:
        """The chunks from the one holding ``offset`` until they cover ``wanted``, and the end when reached; None
        when the holding chunk was not found within MAX_EMPTY_BUCKETS (the caller reads the whole log then)."""
        holding = await self._holding(offset)
        if holding is None:
            # With a first chunk, the walk back down to bucket 0 finds one: it stopped short.
            return None if await self._bucket(0) else ([], 0)
        chunks = [holding]
        covered = _end_of(holding)
        while covered < wanted:
            following = [c for c in await self._bucket(covered // LOG_BUCKET_BYTES) if c.offset >= covered]
            if not following:
                return ([], covered) if offset >= covered else (chunks, covered)
            for chunk in following:
                chunks.append(chunk)
                covered = _end_of(chunk)
                if covered >= wanted:
                    break
        return chunks, None
