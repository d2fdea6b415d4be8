"""Dispatch of workspace operations to arq workers, with a bounded wait for their answer."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from arq.connections import ArqRedis
from arq.jobs import Job, JobStatus, ResultNotFound

from app.domain.errors import WorkerUnavailable
from app.jobs_protocol import JobPayload, raise_for_failure

logger = logging.getLogger(__name__)

# arq's default of 0.5 s between result polls would add up to half a second to every answer.
RESULT_POLL_SECONDS = 0.02


class JobDispatcher:
    def __init__(self, pool: ArqRedis, *, queue_name: str, wait_seconds: float) -> None:
        self._pool = pool
        self._queue_name = queue_name
        self._wait_seconds = wait_seconds

    async def call(self, function: str, *args: Any, wait_seconds: float | None = None) -> JobPayload:
        """Enqueue ``function`` and wait for its answer; domain failures are raised as domain errors.

        The job expires unstarted after the wait, so a request we gave up on is never carried out late.
        """
        wait = self._wait_seconds if wait_seconds is None else wait_seconds
        job = await self._pool.enqueue_job(function, *args, _queue_name=self._queue_name, _expires=wait)
        if job is None:  # only happens with a duplicate _job_id, which we never pass
            raise WorkerUnavailable(f"could not enqueue {function}")
        try:
            result = await job.result(timeout=wait, poll_delay=RESULT_POLL_SECONDS)
        except (TimeoutError, ResultNotFound):
            raise await self._unanswered(job, function, wait) from None
        return raise_for_failure(result)

    async def submit(self, function: str, *args: Any, queue_name: str, job_id: str, **kwargs: Any) -> None:
        """Enqueue without waiting; ``job_id`` makes a second submit of the same work a no-op."""
        await self._pool.enqueue_job(function, *args, _queue_name=queue_name, _job_id=job_id, **kwargs)

    async def abort(self, *, queue_name: str, job_id: str) -> None:
        """Ask the worker running a job to cancel it (arq's Job.abort; its worker has ``allow_abort_jobs``), without
        waiting for the job to end: the caller watches what the job does instead."""
        with contextlib.suppress(TimeoutError):
            await Job(job_id, self._pool, _queue_name=queue_name).abort(timeout=0, poll_delay=0)

    async def _unanswered(self, job: Job, function: str, wait: float) -> WorkerUnavailable:
        status = await job.status()
        logger.warning("job %s (%s) unanswered after %.1f s, status %s", job.job_id, function, wait, status)
        if status in (JobStatus.queued, JobStatus.deferred):
            return WorkerUnavailable(
                f"no worker picked up the request within {wait:.0f} s; nothing was changed. "
                "Check that a worker is running (GET /health)."
            )
        return WorkerUnavailable(
            f"the worker did not finish within {wait:.0f} s; the operation may still complete, "
            "check the resource again shortly"
        )
