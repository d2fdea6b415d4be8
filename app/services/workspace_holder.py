"""Which run holds a project's workspace, as the API can tell it from Redis alone.

While a run holds the workspace, status and dry runs are answered from what is known (the last status
DVC gave plus the run's live stage states, app.domain.known_state). The API answers those itself: a
worker's answer would only add a queue and two Redis round trips to the same reads, and under many
concurrent queries the queue is what made them slow.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.domain.errors import NotFound
from app.domain.runs import Run
from app.repositories.runs import RunRepository

logger = logging.getLogger(__name__)

# The workers' names for the lock and for a run's hold on it (workers/locks.py, workers/runs/job.py run_lock_token).
LOCK_PREFIX = "workspace-lock:"
RUN_HOLDER_PREFIX = "run:"


class WorkspaceHolder:
    def __init__(self, *, redis: Redis, runs: RunRepository) -> None:
        self._redis = redis
        self._runs = runs

    async def running_run(self, project_id: str) -> Run | None:
        """The run holding the workspace, if one does; None also when Redis cannot tell (a worker then answers)."""
        try:
            holder = await self._redis.get(f"{LOCK_PREFIX}{project_id}")
        except RedisError:
            logger.warning("could not read the workspace lock of %s; asking a worker", project_id)
            return None
        value = holder.decode() if isinstance(holder, bytes) else holder
        if not isinstance(value, str) or not value.startswith(RUN_HOLDER_PREFIX):
            return None
        try:
            run = await self._runs.get(value.removeprefix(RUN_HOLDER_PREFIX))
        except NotFound:
            return None
        return None if run.state.finished else run
