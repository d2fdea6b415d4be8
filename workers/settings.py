"""The two arq workers one worker process runs: quick workspace operations, and pipeline runs.

Separate queues keep status, dry runs and validation answering at once while long runs execute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from arq import cron
from arq.connections import RedisSettings
from arq.worker import Worker

from app.jobs import wake_channel
from app.settings import Settings
from workers.jobs.history import commit_run, pipeline_history, project_revisions, tag_revision, working_tree
from workers.jobs.pipelines import (
    apply_pipeline,
    delete_pipeline,
    dry_run_pipeline,
    pipeline_dag,
    pipeline_status,
    replace_pipeline_file,
    validate_pipeline,
)
from workers.jobs.projects import delete_project, init_project
from workers.jobs.results import revision_diff, workspace_results
from workers.runs.job import execute_run, reap_lost_runs, requeue_orphaned_runs

WORKSPACE_FUNCTIONS: list[Any] = [
    init_project,
    delete_project,
    apply_pipeline,
    replace_pipeline_file,
    delete_pipeline,
    validate_pipeline,
    pipeline_status,
    dry_run_pipeline,
    pipeline_dag,
    workspace_results,
    revision_diff,
    commit_run,
    project_revisions,
    pipeline_history,
    tag_revision,
    working_tree,
]

# arq's default 0.5 s poll would be added to every request a user waits on. The API also wakes the workers of a
# queue when it adds a job (WakingWorker), so this is the delay only when such a message is lost.
POLL_DELAY_SECONDS = 0.02
WAKE_RESUBSCRIBE_SECONDS = 1.0

logger = logging.getLogger(__name__)


class WakingWorker(Worker):
    """An arq worker that polls its queue as soon as the API announces a job (app.jobs), not only every poll delay.

    arq sleeps ``poll_delay`` between polls, which is added to the start of every job (half of it on average). Here
    a wake-up on the queue's channel makes it poll at once. Idle, it polls exactly as often as before; without the
    channel (Redis reconnecting) it falls back to plain polling.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._woken = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None

    async def _poll_iteration(self) -> None:
        # arq sleeps what is left of its poll delay after this returns, so the waiting happens in here: a wake-up
        # polls again at once, and the whole lasts one poll delay (arq's sleep is then zero).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.poll_delay_s
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name=f"arq-wake:{self.queue_name}")
        while True:
            # Cleared before the queue is read: a wake-up for a job this poll misses is kept for the next one.
            self._woken.clear()
            await super()._poll_iteration()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self._woken.wait(), remaining)
            except TimeoutError:
                return

    async def _listen(self) -> None:
        while True:
            pubsub = self.pool.pubsub()
            try:
                await pubsub.subscribe(wake_channel(self.queue_name))
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._woken.set()
            except Exception:
                logger.warning("wake-ups of %s interrupted; polling meanwhile", self.queue_name, exc_info=True)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(WAKE_RESUBSCRIBE_SECONDS)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await super().close()


# The health key lives a little longer than this; GET /health reads it to tell whether a worker is alive.
HEALTH_CHECK_SECONDS = 5
REAP_EVERY_SECONDS = 5


def build_workers(settings: Settings, ctx: dict[str, Any]) -> list[WakingWorker]:
    redis_settings = RedisSettings.from_dsn(settings.redis_url)
    workspace = WakingWorker(
        functions=WORKSPACE_FUNCTIONS,
        queue_name=settings.queue_name,
        redis_settings=redis_settings,
        ctx=ctx,
        poll_delay=POLL_DELAY_SECONDS,
        health_check_interval=HEALTH_CHECK_SECONDS,
        handle_signals=False,
        # Jobs are idempotent or guarded (a retried create meets its own Conflict); results are kept
        # long enough for the API to read them.
        max_tries=3,
        keep_result=300,
        job_timeout=600,
    )
    runs = WakingWorker(
        functions=[execute_run],
        cron_jobs=[
            cron(reap_lost_runs, second=set(range(0, 60, REAP_EVERY_SECONDS)), run_at_startup=True, timeout=60),
            cron(requeue_orphaned_runs, second=set(range(2, 60, REAP_EVERY_SECONDS)), run_at_startup=True, timeout=60),
        ],
        queue_name=settings.runs_queue_name,
        redis_settings=redis_settings,
        ctx=ctx,
        poll_delay=POLL_DELAY_SECONDS,
        health_check_interval=HEALTH_CHECK_SECONDS,
        handle_signals=False,
        max_jobs=settings.max_concurrent_pipelines,
        # A run waiting for its workspace retries every half second; it never fails for that alone.
        max_tries=1_000_000,
        keep_result=60,
        # Runs end themselves (their own timeout); this only bounds a run stuck beyond any timeout.
        job_timeout=8 * 24 * 3600,
    )
    return [workspace, runs]
