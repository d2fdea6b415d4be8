"""Per-token limits on requests that start work in a worker (fixed one-minute windows in Redis)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis.asyncio import Redis

from app.domain.errors import RateLimited

WINDOW_SECONDS = 60


@dataclass(frozen=True, slots=True)
class RateLimiter:
    redis: Redis
    per_minute: int

    async def spend(self, token_id: str) -> None:
        """Count one request against the token's window; RateLimited once the window is used up."""
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        key = f"rate:{token_id}:{window}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS * 2)
            count, _ = await pipe.execute()
        if int(count) > self.per_minute:
            raise RateLimited(retry_after_seconds=max(1, int((window + 1) * WINDOW_SECONDS - now) + 1))
