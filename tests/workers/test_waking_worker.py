"""WakingWorker against a real Redis: a job the API announces starts at once, one it does not waits for a poll."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from app.jobs import JobDispatcher, wake_channel
from workers.settings import WakingWorker

pytestmark = [
    pytest.mark.skipif("REDIS_URL" not in os.environ, reason="needs Redis (make test provides it)"),
    # arq's Worker.close() closes its pool with redis-py's deprecated close(); the call is arq's, not ours.
    pytest.mark.filterwarnings(r"ignore:Call to deprecated close\. \(Use aclose\(\) instead\):DeprecationWarning"),
]

LONG_POLL_SECONDS = 5.0
DEADLINE_SECONDS = 10.0


async def until(condition: Callable[[], Awaitable[bool]], seconds: float = DEADLINE_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.01)  # polling interval of a deadline-bounded wait


@asynccontextmanager
async def serving(poll_delay: float) -> AsyncIterator[tuple[str, ArqRedis, dict[str, asyncio.Event]]]:
    """A WakingWorker on a queue of its own, listening for wake-ups; yields the queue, a pool and the jobs' events."""
    settings = RedisSettings.from_dsn(os.environ["REDIS_URL"])
    queue = f"test-wake:{uuid.uuid4().hex[:8]}"
    started: dict[str, asyncio.Event] = {}

    async def mark(ctx: dict[str, Any], name: str) -> None:
        started.setdefault(name, asyncio.Event()).set()

    mark.__qualname__ = "mark"
    worker = WakingWorker(
        functions=[mark], queue_name=queue, redis_settings=settings, poll_delay=poll_delay, handle_signals=False
    )
    pool = await create_pool(settings)
    task = asyncio.create_task(worker.main())
    try:

        async def listening() -> bool:
            counts: list[tuple[bytes, int]] = await pool.pubsub_numsub(wake_channel(queue))
            return bool(counts and counts[0][1] > 0)

        await until(listening)
        yield queue, pool, started
    finally:

        async def settled() -> bool:
            return all(t.done() for t in worker.tasks.values())

        await until(settled)  # jobs finish writing their results; close() would cancel them
        await worker.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pool.aclose()


async def test_an_announced_job_starts_long_before_the_next_poll() -> None:
    async with serving(LONG_POLL_SECONDS) as (queue, pool, started):
        dispatcher = JobDispatcher(pool, queue_name=queue, wait_seconds=DEADLINE_SECONDS)
        for name in ("first", "second"):  # the second after a wake-up: the wait between polls is back
            began = time.monotonic()
            await dispatcher.submit("mark", name, queue_name=queue, job_id=f"{queue}:{name}")
            await asyncio.wait_for(started.setdefault(name, asyncio.Event()).wait(), DEADLINE_SECONDS)
            assert time.monotonic() - began < LONG_POLL_SECONDS / 2, f"{name} waited for a poll"


async def test_a_job_nobody_announced_is_still_found_by_polling() -> None:
    async with serving(0.2) as (queue, pool, started):
        await pool.enqueue_job("mark", "quiet", _queue_name=queue)  # no wake-up message
        await asyncio.wait_for(started.setdefault("quiet", asyncio.Event()).wait(), DEADLINE_SECONDS)
