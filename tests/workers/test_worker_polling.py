"""The process's arq workers find a job by polling their queue every POLL_DELAY_SECONDS (no wake-up channel)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

import pytest
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker

from app.jobs import JobDispatcher
from app.settings import Settings
from workers.settings import POLL_DELAY_SECONDS, build_workers

pytestmark = [
    pytest.mark.skipif("REDIS_URL" not in os.environ, reason="needs Redis (make test provides it)"),
    # arq's Worker.close() closes its pool with redis-py's deprecated close(); the call is arq's, not ours.
    pytest.mark.filterwarnings(r"ignore:Call to deprecated close\. \(Use aclose\(\) instead\):DeprecationWarning"),
]

DEADLINE_SECONDS = 10.0
# Far below arq's default poll of 0.5 s, with room for a loaded machine.
STARTS_WITHIN_SECONDS = 0.25


async def _no_hook(ctx: dict[str, Any]) -> None:
    return None


async def test_every_worker_polls_at_the_small_delay_through_arq_hooks() -> None:
    # async: arq's Worker takes the running event loop (outside one it would make a loop of its own)
    workers = build_workers(Settings.from_env(), on_startup=_no_hook, on_shutdown=_no_hook)
    assert [type(w) for w in workers] == [Worker, Worker, Worker]
    assert all(w.poll_delay_s == POLL_DELAY_SECONDS for w in workers)
    assert all(w.on_startup is _no_hook and w.on_shutdown is _no_hook for w in workers)


async def test_a_submitted_job_starts_within_a_few_poll_delays() -> None:
    settings = RedisSettings.from_dsn(os.environ["REDIS_URL"])
    queue = f"test-poll:{uuid.uuid4().hex[:8]}"
    started: dict[str, asyncio.Event] = {}

    async def mark(ctx: dict[str, Any], name: str) -> None:
        started.setdefault(name, asyncio.Event()).set()

    mark.__qualname__ = "mark"  # arq names a function by its qualified name
    worker = Worker(
        functions=[mark], queue_name=queue, redis_settings=settings, poll_delay=POLL_DELAY_SECONDS, handle_signals=False
    )
    pool = await create_pool(settings)
    running = asyncio.create_task(worker.async_run())
    try:
        dispatcher = JobDispatcher(pool, queue_name=queue, wait_seconds=DEADLINE_SECONDS)
        await dispatcher.submit("mark", "warm-up", queue_name=queue, job_id=f"{queue}:warm-up")
        await asyncio.wait_for(started.setdefault("warm-up", asyncio.Event()).wait(), DEADLINE_SECONDS)
        for name in ("first", "second"):
            began = time.monotonic()
            await dispatcher.submit("mark", name, queue_name=queue, job_id=f"{queue}:{name}")
            await asyncio.wait_for(started.setdefault(name, asyncio.Event()).wait(), DEADLINE_SECONDS)
            assert time.monotonic() - began < STARTS_WITHIN_SECONDS, f"{name} waited longer than a few polls"
    finally:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not all(t.done() for t in worker.tasks.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # jobs finish writing their results; close() would cancel them
        await worker.close()
        await asyncio.gather(running, return_exceptions=True)
        await pool.aclose()
