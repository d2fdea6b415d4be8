"""``python -m workers``: one worker process serving the workspace queue, the runs queue and the periodic jobs.

Three arq workers run side by side (``Worker.async_run``): workspace jobs, runs, and the periodic maintenance jobs
(reaper, re-queue, clean-ups). Their on_startup/on_shutdown hooks open what the jobs share (workers.context) when
the first starts and close it when the last stops. SIGINT/SIGTERM close all three.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import Any

# DVC reads this at import time; without it every DVC call forks an analytics reporter.
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

from app.settings import Settings
from workers import sandbox
from workers.context import close_resources, open_resources, resources_of
from workers.execution import start_stage_server
from workers.execution.shell import stage_shell_path
from workers.settings import build_workers

logger = logging.getLogger("workers")


class RoutineJobLines(logging.Filter):
    """Drops arq's INFO lines about its periodic jobs (each cron job's start and end, every few seconds, and the
    health record): a worker left running would print them about once a second. Their warnings and errors (a
    cron job that failed or timed out) still come through, and so does every line about a user's job.
    LOG_ROUTINE_JOBS=true keeps them all (the tests' stacks do, so that a failing test's worker log shows them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return "cron:" not in message and not message.startswith("recording health")


class SharedResources:
    """The arq hooks of the process's workers: resources opened by the first worker to start, closed by the last
    to stop (each worker calls both hooks once)."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._users = 0
        self._shared: dict[str, Any] = {}  # each arq worker has a ctx of its own: what they share is copied in
        self._sandbox_status: asyncio.Task[None] | None = None

    async def on_startup(self, ctx: dict[str, Any]) -> None:
        async with self._lock:  # the second worker waits until the first has opened everything
            if self._users == 0:
                await open_resources(self._shared)
                # DVC warm in a stage server before the first run asks for it (see workers.execution), and the stage
                # shell compiled (~0.1 s) before the first stage needs it.
                start_stage_server()
                await asyncio.to_thread(stage_shell_path)
                await self._probe_sandbox()
            ctx.update(self._shared)
            self._users += 1

    async def _probe_sandbox(self) -> None:
        """Find out once whether stage commands can be sandboxed here; say it in the log and in Redis (/health)."""
        resources = resources_of(self._shared)
        policy = await asyncio.to_thread(sandbox.configure, resources.settings)
        log = logger.error if policy.refusal else logger.warning if policy.unsandboxed else logger.info
        log("stage sandbox: %s (%s; cgroup v2 %s)", policy.mode, policy.capability.detail, policy.capability.cgroup)
        self._sandbox_status = asyncio.create_task(sandbox.keep_recorded(resources.redis, resources.settings, policy))

    async def on_shutdown(self, ctx: dict[str, Any]) -> None:
        async with self._lock:
            if self._users == 0:
                return  # this worker's start-up failed before it opened anything
            self._users -= 1
            if self._users == 0:
                if self._sandbox_status is not None:
                    self._sandbox_status.cancel()
                with contextlib.suppress(Exception):
                    await sandbox.forget(resources_of(self._shared).redis, resources_of(self._shared).settings)
                await close_resources(self._shared)


async def serve() -> None:
    settings = Settings.from_env()
    hooks = SharedResources()
    workers = build_workers(settings, on_startup=hooks.on_startup, on_shutdown=hooks.on_shutdown)
    runs = [asyncio.create_task(w.async_run(), name=f"arq:{w.queue_name}") for w in workers]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    logger.info("worker serving %s", ", ".join(w.queue_name for w in workers))
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([stopped, *runs], return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    for worker in workers:
        # Cancels running jobs (a run job answers that by stopping its stages and failing the run), then on_shutdown.
        with contextlib.suppress(Exception):
            await worker.close()
    await asyncio.gather(*runs, return_exceptions=True)


def main() -> None:
    # Group write stays out of the umask: DVC chmods a persist output to 0o666 & ~umask before its stage runs, and
    # on a workspace file with an ACL the group bits are the mask that lets the sandbox's user write it.
    os.umask(os.umask(0) & ~0o020)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    if os.environ.get("LOG_ROUTINE_JOBS", "").lower() not in ("1", "true", "yes"):
        logging.getLogger("arq.worker").addFilter(RoutineJobLines())
    asyncio.run(serve())


if __name__ == "__main__":
    main()
