"""Per-user limits on requests that start work in a worker: a sliding one-minute window, counted in Redis.

Fixed windows let a client spend its limit at the end of one minute and again at the start of the next (twice
the limit within seconds). The sliding estimate weighs the previous minute's count by how much of it still lies
within the last 60 s, as Cloudflare and Redis's own rate-limiting patterns do: two counters per user, no log.
Counting per user, not per token, keeps a user from multiplying the limit by minting tokens.

Without Redis the limit cannot be counted, and the request is let through: every request that starts work needs Redis
next (to queue its job), so it fails there with the outage's own error, after the checks that come first.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.domain.errors import RateLimited

WINDOW_SECONDS = 60
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RateLimiter:
    redis: Redis
    per_minute: int

    async def spend(self, user_id: str) -> None:
        """Count one request against the user; RateLimited once the last minute's estimate passes the limit.

        Refused requests count too, so a client that keeps hammering stays limited.
        """
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        current_key, previous_key = f"rate:user:{user_id}:{window}", f"rate:user:{user_id}:{window - 1}"
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(current_key)
                pipe.expire(current_key, WINDOW_SECONDS * 2)
                pipe.get(previous_key)
                current, _, previous = await pipe.execute()
        except (RedisConnectionError, RedisTimeoutError) as error:
            logger.warning("rate limit not counted, Redis unavailable: %s", error)
            return
        elapsed = now / WINDOW_SECONDS - window
        wait = seconds_until_allowed(
            previous=int(previous or 0), current=int(current), elapsed=elapsed, limit=self.per_minute
        )
        if wait is not None:
            raise RateLimited(retry_after_seconds=max(1, math.ceil(wait)))


def seconds_until_allowed(*, previous: int, current: int, elapsed: float, limit: int) -> float | None:
    """None when this request (counted in ``current``) fits the limit; otherwise when one more would.

    ``elapsed`` is the fraction of the current window gone by; the previous window's count weighs ``1 - elapsed``.
    """
    if previous * (1 - elapsed) + current <= limit:
        return None
    # One more request fits once previous * (1 - f) + current + 1 <= limit, later in this window ...
    room = limit - current - 1
    if room >= 0 and previous > 0:
        return (1 - room / previous - elapsed) * WINDOW_SECONDS
    # ... or in the next one, where this window's count weighs in instead: current * (1 - f) + 1 <= limit.
    share = max(0.0, 1 - (limit - 1) / current) if limit >= 1 else 1.0
    return (1 - elapsed + share) * WINDOW_SECONDS
