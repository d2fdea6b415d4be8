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
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

SUBSCRIBE_CONFIRM_SECONDS = 5.0
QUEUE_LIMIT = 10_000


@dataclass(eq=False)  # identity semantics: each subscriber is itself, kept in a set
class Subscription:
    """A subscriber's queue, and whether it may have missed messages since it last asked."""

    queue: asyncio.Queue[bytes]
    hub: EventHub
    epoch: int
    dropped: bool = False

    def may_have_missed(self) -> bool:
        """True once after a full queue dropped a message or the hub reconnected to Redis."""
        missed = self.dropped or self.epoch != self.hub.epoch
        self.dropped, self.epoch = False, self.hub.epoch
        return missed


class EventHub:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._pubsub: PubSub = redis.pubsub()
        self._subscriptions: dict[str, set[Subscription]] = {}
        self.epoch = 0
        """Counts reconnections to Redis: messages published meanwhile never reached anyone."""
        self._confirmed: dict[str, asyncio.Event] = {}
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None
        self._channel_added = asyncio.Event()

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        subscription = Subscription(queue=asyncio.Queue(maxsize=QUEUE_LIMIT), hub=self, epoch=self.epoch)
        async with self._lock:
            confirmed = self._confirmed.get(channel)
            self._subscriptions.setdefault(channel, set()).add(subscription)
            if confirmed is None:
                confirmed = self._confirmed[channel] = asyncio.Event()
                try:
                    await self._pubsub.subscribe(channel)
                except BaseException:
                    self._forget(channel, subscription)
                    raise
                self._channel_added.set()
                self._ensure_reader()
        try:
            await asyncio.wait_for(confirmed.wait(), SUBSCRIBE_CONFIRM_SECONDS)
            yield subscription
        finally:
            async with self._lock:
                if self._forget(channel, subscription):
                    with contextlib.suppress(RedisError):
                        await self._pubsub.unsubscribe(channel)

    def _forget(self, channel: str, subscription: Subscription) -> bool:
        """Drop a subscriber; True when it was the channel's last."""
        subscriptions = self._subscriptions.get(channel, set())
        subscriptions.discard(subscription)
        if subscriptions:
            return False
        self._subscriptions.pop(channel, None)
        self._confirmed.pop(channel, None)
        return True

    def _ensure_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="event-hub-reader")

    async def _read(self) -> None:
        while True:
            try:
                if not self._pubsub.subscribed:
                    # Nothing to read until someone subscribes: woken by the first subscribe, whose confirmation
                    # the subscriber waits for (a fixed sleep here was added to every first subscription's start).
                    self._channel_added.clear()
                    await self._channel_added.wait()
                    continue
                message = await self._pubsub.get_message(timeout=1.0)
            except RedisError:
                # redis-py reconnects and re-subscribes on the next call; subscribers catch up from MongoDB.
                logger.warning("event hub lost Redis; reconnecting", exc_info=True)
                self.epoch += 1
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
            for subscription in self._subscriptions.get(channel, ()):
                try:
                    subscription.queue.put_nowait(payload)
                except asyncio.QueueFull:
                    # A stalled client: it reads what it missed from MongoDB once it catches up.
                    subscription.dropped = True

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
