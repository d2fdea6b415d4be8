"""One DVC operation per workspace at a time, across every worker process.

DVC holds a repository lock while it works and gives up after a few seconds; serialising our own
operations per workspace through Redis means they queue politely instead of failing on that lock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

from app.domain.errors import WorkspaceBusy
from app.workspace_lock import workspace_lock_name

__all__ = ["LOCK_LEASE_SECONDS", "workspace_lock", "workspace_lock_name"]

# A lease, renewed while its holder works: a worker that dies holding the lock frees it this fast.
LOCK_LEASE_SECONDS = 15.0
RENEW_EVERY_SECONDS = LOCK_LEASE_SECONDS / 3


@asynccontextmanager
async def workspace_lock(redis: Redis, project_id: str, *, wait_seconds: float) -> AsyncIterator[None]:
    lock = redis.lock(
        workspace_lock_name(project_id),
        timeout=LOCK_LEASE_SECONDS,
        blocking_timeout=wait_seconds,
        sleep=0.02,
        thread_local=False,
    )
    if not await lock.acquire():
        raise WorkspaceBusy(
            f"the workspace is busy with another operation (waited {wait_seconds:.0f} s); try again shortly"
        )
    renewing = asyncio.create_task(_renew(lock))
    try:
        yield
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        # LockError: the lease ran out while we worked; whoever holds the lock now releases it.
        with contextlib.suppress(LockError):
            await lock.release()


async def _renew(lock: Lock) -> None:
    while True:
        await asyncio.sleep(RENEW_EVERY_SECONDS)
        with contextlib.suppress(LockError, RedisError):
            await lock.reacquire()
