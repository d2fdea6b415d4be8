"""One Redis pub/sub connection per API process, shared by every subscription it serves.

Subscribers get their own queue per channel. ``subscribe`` returns only after Redis confirmed the
subscription, so whatever a subscriber reads from MongoDB afterwards overlaps with what it will
receive live: nothing falls between the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

SUBSCRIBE_CONFIRM_SECONDS = 5.0
QUEUE_LIMIT = 10_000


class EventHub:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._pubsub: PubSub = redis.pubsub()
        self._queues: dict[str, set[asyncio.Queue[bytes]]] = {}
        self._confirmed: dict[str, asyncio.Event] = {}
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[asyncio.Queue[bytes]]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        async with self._lock:
            confirmed = self._confirmed.get(channel)
            self._queues.setdefault(channel, set()).add(queue)
            if confirmed is None:
                confirmed = self._confirmed[channel] = asyncio.Event()
                try:
                    await self._pubsub.subscribe(channel)
                except BaseException:
                    self._forget(channel, queue)
                    raise
                self._ensure_reader()
        try:
            await asyncio.wait_for(confirmed.wait(), SUBSCRIBE_CONFIRM_SECONDS)
            yield queue
        finally:
            async with self._lock:
                if self._forget(channel, queue):
                    with contextlib.suppress(RedisError):
                        await self._pubsub.unsubscribe(channel)

    def _forget(self, channel: str, queue: asyncio.Queue[bytes]) -> bool:
        """Drop a subscriber; True when it was the channel's last."""
        queues = self._queues.get(channel, set())
        queues.discard(queue)
        if queues:
            return False
        self._queues.pop(channel, None)
        self._confirmed.pop(channel, None)
        return True

    def _ensure_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="event-hub-reader")

    async def _read(self) -> None:
        while True:
            try:
                if not self._pubsub.subscribed:
                    await asyncio.sleep(0.05)  # nothing to read until someone subscribes
                    continue
                message = await self._pubsub.get_message(timeout=1.0)
            except RedisError:
                # redis-py reconnects and re-subscribes on the next call; subscribers catch up from MongoDB.
                logger.warning("event hub lost Redis; reconnecting", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            if message is not None:
                self._dispatch(message)

    def _dispatch(self, message: dict[str, object]) -> None:
        raw_channel = message["channel"]
        channel = raw_channel.decode() if isinstance(raw_channel, bytes) else str(raw_channel)
        kind = message["type"]
        if kind == "subscribe":
            confirmed = self._confirmed.get(channel)
            if confirmed is not None:
                confirmed.set()
        elif kind == "message":
            data = message["data"]
            payload = data if isinstance(data, bytes) else str(data).encode()
            for queue in self._queues.get(channel, ()):
                with contextlib.suppress(asyncio.QueueFull):
                    # A full queue means a stalled client; it notices the gap by sequence number and
                    # reads the missing events from MongoDB.
                    queue.put_nowait(payload)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
