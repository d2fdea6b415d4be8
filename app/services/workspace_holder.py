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
from app.workspace_lock import run_holding, workspace_lock_name

logger = logging.getLogger(__name__)


class WorkspaceHolder:
    def __init__(self, *, redis: Redis, runs: RunRepository) -> None:
        self._redis = redis
        self._runs = runs

    async def running_run(self, project_id: str) -> Run | None:
        """The run holding the workspace, if one does; None also when Redis cannot tell (a worker then answers)."""
        try:
            holder = await self._redis.get(workspace_lock_name(project_id))
        except RedisError:
            logger.warning("could not read the workspace lock of %s; asking a worker", project_id)
            return None
        run_id = run_holding(holder)
        if run_id is None:
            return None
        try:
            run = await self._runs.get(run_id)
        except NotFound:
            return None
        return None if run.state.finished else run
