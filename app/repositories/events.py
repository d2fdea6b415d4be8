"""The event log of runs: every state change and log chunk, numbered per run from 1 without gaps."""

from __future__ import annotations

from app.db import Database, Document
from app.domain.runs import EventType, LogChunk, RunEvent


class EventRepository:
    def __init__(self, db: Database) -> None:
        self._collection = db.run_events

    async def append_many(self, events: list[RunEvent]) -> None:
        """Consecutive events in one ordered write: a failure leaves a prefix stored, never a gap."""
        await self._collection.insert_many([e.to_dict() for e in events], ordered=True)

    async def after(self, run_id: str, *, seq: int, limit: int = 500) -> list[RunEvent]:
        docs = (
            await self._collection.find({"run_id": run_id, "seq": {"$gt": seq}}).sort("seq", 1).limit(limit).to_list()
        )
        return [RunEvent.from_dict(d) for d in docs]

    async def last_seq(self, run_id: str) -> int:
        docs = await self._collection.find({"run_id": run_id}, {"seq": 1}).sort("seq", -1).limit(1).to_list()
        return int(docs[0]["seq"]) if docs else 0

    async def log(self, run_id: str, *, stage: str, offset: int, limit_bytes: int) -> tuple[list[LogChunk], bool]:
        """The stage's log from byte ``offset``: whole chunks, at least one, until ``limit_bytes`` is reached.

        The flag tells whether more chunks follow.
        """
        query: Document = {"run_id": run_id, "type": EventType.LOG.value, "stage": stage, "offset": {"$gte": offset}}
        chunks: list[LogChunk] = []
        size = 0
        more = False
        cursor = self._collection.find(query).sort("seq", 1)
        async for doc in cursor:
            chunk = LogChunk(stage=stage, offset=int(doc["offset"]), text=doc["text"])
            if chunks and size + len(chunk.text.encode()) > limit_bytes:
                more = True
                break
            chunks.append(chunk)
            size += len(chunk.text.encode())
        await cursor.close()
        return chunks, more

    async def delete_for_runs(self, run_ids: list[str]) -> None:
        await self._collection.delete_many({"run_id": {"$in": run_ids}})
