"""A sweep's limit on experiments running at once: ``max_parallel`` slots, each a Redis lock with a lease.

An experiment takes a free slot before its workspace lock and keeps it (renewed) until it ends; with none free its
job comes back shortly (arq's Retry), as a run does for a busy workspace. A worker that dies frees its slot when the
lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from arq import Retry
from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

from app.domain.experiments import Experiment

SLOT_LEASE_SECONDS = 30.0
RETRY_SECONDS = 0.5


def slot_count(experiment: Experiment) -> int:
    return experiment.max_parallel or os.cpu_count() or 1


@asynccontextmanager
async def sweep_slot(redis: Redis, experiment: Experiment) -> AsyncIterator[None]:
    """A slot of the experiment's sweep while the block runs (nothing for an experiment of no sweep)."""
    if experiment.sweep_id is None:
        yield
        return
    slot = await _free_slot(redis, experiment.sweep_id, slot_count(experiment))
    if slot is None:
        raise Retry(defer=RETRY_SECONDS)
    renewing = asyncio.create_task(_renew(slot))
    try:
        yield
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        with contextlib.suppress(LockError, RedisError):
            await slot.release()


async def _free_slot(redis: Redis, sweep_id: str, count: int) -> Lock | None:
    for index in range(count):
        lock = redis.lock(
            f"sweep:{sweep_id}:slot:{index}", timeout=SLOT_LEASE_SECONDS, blocking=False, thread_local=False
        )
        if await lock.acquire():
            return lock
    return None


async def _renew(lock: Lock) -> None:
    while True:
        await asyncio.sleep(SLOT_LEASE_SECONDS / 3)
        with contextlib.suppress(LockError, RedisError):
            await lock.reacquire()
