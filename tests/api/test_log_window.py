"""`EventRepository.log_window` on the real store: the chunks from the one holding `offset`, and the log's end.

A page that reaches the last stored chunk takes the end from it (no query of its own); a page that fills up before
asks for the end. Both must give what the whole stored log says, other stages and runs left out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient

from app.db import Database, Document, ensure_indexes
from app.domain.runs import EventType, RunEvent
from app.repositories.events import EventRepository
from tests.stack import Stack

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LINES = [f"line {i} {'é' * (i % 3)}\n" for i in range(12)]


@pytest.fixture
async def events(stack: Stack) -> AsyncIterator[EventRepository]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(stack.env["MONGODB_URL"], tz_aware=True)
    db: Database = client[f"log_window_{ObjectId()}"]
    await ensure_indexes(db)
    yield EventRepository(db)
    await client.drop_database(db.name)
    await client.close()


async def _store(events: EventRepository, run_id: str, stage: str, lines: list[str], first_seq: int) -> list[int]:
    offsets, offset = [], 0
    stored = []
    for index, line in enumerate(lines):
        offsets.append(offset)
        stored.append(
            RunEvent(
                run_id=run_id, seq=first_seq + index, type=EventType.LOG, at=NOW, stage=stage, text=line, offset=offset
            )
        )
        offset += len(line.encode())
    await events.append_many(stored)
    return offsets


async def test_windows_and_ends_match_the_stored_log(events: EventRepository) -> None:
    run_id = str(ObjectId())
    offsets = await _store(events, run_id, "train", LINES, 1)
    await _store(events, run_id, "other", ["x" * 500 + "\n"], 100)  # another stage of the same run
    await _store(events, str(ObjectId()), "train", ["y" * 900 + "\n"], 1)  # the same stage of another run
    log = "".join(LINES).encode()
    end = len(log)

    for offset in (0, 1, offsets[3], offsets[3] + 2, offsets[-1], end - 1):
        for limit in (1, 10, 40, 10_000):
            chunks, found_end = await events.log_window(run_id, stage="train", offset=offset, limit_bytes=limit)
            assert found_end == end, (offset, limit)
            holding = max(i for i, o in enumerate(offsets) if o <= offset)
            assert chunks[0].offset == offsets[holding], (offset, limit)
            data = "".join(c.text for c in chunks).encode()
            assert log[chunks[0].offset :].startswith(data)
            covered = chunks[0].offset + len(data)
            assert covered >= min(end, offset + limit + 4), (offset, limit)  # the page and a character more
            assert len(chunks) == 1 or chunks[-2].offset + len(chunks[-2].text.encode()) < offset + limit + 4

    assert await events.log_window(run_id, stage="train", offset=end, limit_bytes=10) == ([], end)
    assert await events.log_window(run_id, stage="train", offset=end + 7, limit_bytes=10) == ([], end)
    assert await events.log_window(run_id, stage="none", offset=0, limit_bytes=10) == ([], 0)
