"""A run's events read through their buckets give what the range queries give, at and across bucket edges.

`EventRepository.after` and `log_window` with ``bucketed`` read a few buckets by equality (what FerretDB v1 pushes
down); without it they read the run with ranges, as for runs stored before the buckets. The range reads are the
oracle here, on the real store. A run stored before the buckets (no marker, no bucket fields) still reads the same
through the API.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from app.db import Database, Document, ensure_indexes
from app.domain.runs import EventType, RunEvent, RunState
from app.events import channels
from app.repositories.events import LOG_BUCKET_BYTES, MAX_EMPTY_BUCKETS, SEQ_BUCKET, EventRepository
from app.services.runs import log_page
from tests.api.pipeline_fixtures import create_pipeline
from tests.api.run_helpers import execute, finished
from tests.conftest import GraphQLClient
from tests.stack import Stack
from tests.ws import subscribe

NOW = datetime(2026, 1, 1, tzinfo=UTC)
B = LOG_BUCKET_BYTES
MakeProject = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
async def events(stack: Stack) -> AsyncIterator[EventRepository]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(stack.env["MONGODB_URL"], tz_aware=True)
    db: Database = client[f"event_buckets_{ObjectId()}"]
    await ensure_indexes(db)
    yield EventRepository(db)
    await client.drop_database(db.name)
    await client.close()


def _event(run_id: str, seq: int) -> RunEvent:
    if seq % 7 == 0:
        return RunEvent(run_id=run_id, seq=seq, type=EventType.RUN_STATE, at=NOW, run_state=RunState.RUNNING)
    return RunEvent(run_id=run_id, seq=seq, type=EventType.LOG, at=NOW, stage="s", text=f"{seq}\n", offset=seq * 10)


async def test_catch_up_pages_at_bucket_edges_match_the_range_query(events: EventRepository) -> None:
    run_id, other = str(ObjectId()), str(ObjectId())
    last = 3 * SEQ_BUCKET + 17
    await events.append_many([_event(run_id, s) for s in range(1, last + 1)])
    await events.append_many([_event(other, s) for s in range(1, SEQ_BUCKET + 2)])  # another run, same buckets

    edges = [0, 1, last - 1, last, last + 5] + [k * SEQ_BUCKET + d for k in (1, 2, 3) for d in (-2, -1, 0, 1)]
    for seq in edges:
        for limit in (1, 100, SEQ_BUCKET - 1, SEQ_BUCKET, SEQ_BUCKET + 1, 500):
            bucketed = await events.after(run_id, seq=seq, limit=limit, bucketed=True)
            assert [e.seq for e in bucketed] == list(range(seq + 1, min(last, seq + limit) + 1)), (seq, limit)
            assert bucketed == await events.after(run_id, seq=seq, limit=limit), (seq, limit)
            assert {e.run_id for e in bucketed} <= {run_id}


async def test_numbers_spent_by_a_failed_write_are_read_past_when_an_event_beyond_is_known(
    events: EventRepository,
) -> None:
    """A failed batch leaves a hole in the numbers; a follower that saw a later event live (or read the run's last
    seq) names it, and the read goes past the hole, narrower or wider than the page, as the range query does."""
    run_id = str(ObjectId())
    narrow_from, wide_from = 2 * SEQ_BUCKET + 5, 8 * SEQ_BUCKET  # holes of 1.9 and 5.9 buckets
    stored = [*range(1, 11), *range(narrow_from, narrow_from + 10), *range(wide_from, wide_from + 10)]
    await events.append_many([_event(run_id, s) for s in stored])

    within_page = await events.after(run_id, seq=10, limit=500, bucketed=True, exists=narrow_from)
    assert [e.seq for e in within_page] == list(range(narrow_from, narrow_from + 10))
    wider_than_page = await events.after(run_id, seq=narrow_from + 9, limit=500, bucketed=True, exists=wide_from)
    assert [e.seq for e in wider_than_page] == list(range(wide_from, wide_from + 10))
    assert wider_than_page == await events.after(run_id, seq=narrow_from + 9, limit=500)
    # Nothing known beyond the hole: the read ends where the stored numbers stop, as at the tail of a live run.
    assert await events.after(run_id, seq=narrow_from + 9, limit=500, bucketed=True) == []


def _lines(total: int, width: int) -> list[str]:
    """Lines of about ``width`` bytes until ``total`` bytes, some with characters of 2 and 4 bytes."""
    lines, size, index = [], 0, 0
    while size < total:
        line = f"{index:05d} " + "é😀x"[index % 3] * (width // 4) + "\n"
        lines.append(line)
        size += len(line.encode())
        index += 1
    return lines


async def _store_log(events: EventRepository, run_id: str, stage: str, texts: list[str], first_seq: int) -> int:
    stored, offset = [], 0
    for index, text in enumerate(texts):
        event = RunEvent(run_id, first_seq + index, EventType.LOG, NOW, stage=stage, text=text, offset=offset)
        stored.append(event)
        offset += len(text.encode())
    await events.append_many(stored)
    return offset


async def _compare_windows(events: EventRepository, run_id: str, stage: str, offsets: list[int]) -> None:
    for offset in offsets:
        for limit in (1, 10, 4096, B, 64 * 1024):
            chunks, end = await events.log_window(run_id, stage=stage, offset=offset, limit_bytes=limit, bucketed=True)
            expected, whole_end = await events.log_window(run_id, stage=stage, offset=offset, limit_bytes=limit)
            assert chunks == expected, (offset, limit)
            covered = chunks[-1].offset + len(chunks[-1].text.encode()) if chunks else offset
            if end is None:  # the page filled up before the end
                assert covered >= offset + limit + 4 and covered <= (whole_end or 0), (offset, limit)
            else:
                assert end == whole_end, (offset, limit)
            for done in (True, False):
                got = log_page(stage, offset, limit, chunks, end=end, finished=done)
                assert got == log_page(stage, offset, limit, expected, end=whole_end, finished=done), (offset, limit)


async def test_log_windows_across_buckets_match_the_range_reads(events: EventRepository) -> None:
    run_id = str(ObjectId())
    head = _lines(2 * B - 300, 120)  # small chunks over two buckets, then one that ends exactly on a bucket edge
    size = len("".join(head).encode())
    texts = [*head, "f" * (2 * B - size - 1) + "\n", "L" * (B * 5 // 2) + "\n", *_lines(B + 900, 90)]
    end = await _store_log(events, run_id, "train", texts, 1)
    await _store_log(events, run_id, "other", _lines(B, 50), 10_000)  # another stage of the run
    await _store_log(events, str(ObjectId()), "train", _lines(2 * B, 70), 1)  # the same stage of another run
    starts = [sum(len(t.encode()) for t in texts[:i]) for i in range(len(texts))]
    assert 2 * B in starts, "a chunk starts exactly on a bucket edge"

    around = [k * B + d for k in range(1, end // B + 2) for d in (-5, -1, 0, 1)]
    inside_long = [2 * B + 1, 3 * B, 4 * B + 7]  # buckets the long chunk spans: nothing starts in them
    tail = [end - 4096, end - 1, end, end + 7, end + 3 * B]
    await _compare_windows(events, run_id, "train", [0, 1, *around, *inside_long, *tail])
    assert await events.log_window(run_id, stage="none", offset=0, limit_bytes=10, bucketed=True) == ([], 0)
    assert await events.log_window(run_id, stage="none", offset=5 * B, limit_bytes=10, bucketed=True) == ([], 0)


async def test_a_chunk_longer_than_the_walk_back_reads_the_whole_log(events: EventRepository) -> None:
    run_id = str(ObjectId())
    huge = "h" * ((MAX_EMPTY_BUCKETS + 3) * B) + "\n"
    end = await _store_log(events, run_id, "dump", ["start\n", huge, "after\n"], 1)
    far = (MAX_EMPTY_BUCKETS + 2) * B  # inside the huge chunk, past the buckets walked back
    await _compare_windows(events, run_id, "dump", [0, 6, B, far, end - 3, end, end + (MAX_EMPTY_BUCKETS + 1) * B])


LOG_PAGE = """
query($r: ID!, $offset: Int!, $limit: Int!) {
  run(id: $r) { ... on Run { stages { log(offset: $offset, limitBytes: $limit) { ... on StageLog {
    offset text nextOffset complete } } } } }
}
"""
RUN_UPDATES = """
subscription($runId: ID!, $after: Int) { runUpdates(runId: $runId, after: $after) { seq type stage text offset } }
"""


async def test_a_run_stored_before_the_buckets_reads_the_same(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, mongo: Any
) -> None:
    project = await make_project()
    stage = {"name": "talk", "command": "for i in $(seq 1 40); do echo line-$i-é; sleep 0.02; done", "outs": []}
    written = await create_pipeline(gql, project["id"], stages=[stage])
    run_id = await execute(gql, written["pipeline"]["id"])
    assert (await finished(gql, run_id))["state"] == "SUCCEEDED"
    stored = list(mongo.run_events.find({"run_id": run_id}).sort("seq", 1))
    assert mongo.runs.find_one({"_id": ObjectId(run_id)})["events_bucketed"] is True
    assert all("seq_bucket" in d for d in stored) and all("log_bucket" in d for d in stored if d["type"] == "log")
    redis = Redis.from_url(stack.env["REDIS_URL"])

    async def reads() -> tuple[list[Any], list[Any]]:
        await redis.delete(channels.run_recent(run_id))  # the catch-up comes from the store, not Redis's list
        pages = []
        for offset, limit in ((0, 100_000), (0, 7), (5, 3), (100, 50), (10_000, 10)):
            page = await gql.execute(LOG_PAGE, {"r": run_id, "offset": offset, "limit": limit})
            pages.append(page["run"]["stages"][0]["log"])
        updates: list[Any] = []

        async def collect() -> None:
            async for data in subscribe(stack.base_url, RUN_UPDATES, {"runId": run_id, "after": 0}, token=gql.token):
                updates.append(data["runUpdates"])

        await asyncio.wait_for(collect(), 60)
        return pages, updates

    try:
        bucketed = await reads()
        assert "line-40-é" in bucketed[0][0]["text"] and bucketed[0][0]["complete"] is True
        assert [u["seq"] for u in bucketed[1][1:]] == [d["seq"] for d in stored]
        # As stored before the buckets: no marker on the run, no bucket fields on its events.
        mongo.run_events.delete_many({"run_id": run_id})
        mongo.run_events.insert_many([{k: v for k, v in d.items() if not k.endswith("_bucket")} for d in stored])
        mongo.runs.update_one({"_id": ObjectId(run_id)}, {"$unset": {"events_bucketed": ""}})
        assert await reads() == bucketed
    finally:
        await redis.aclose()
