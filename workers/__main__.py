"""``python -m workers``: one worker process serving the workspace queue and the runs queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import Any

# DVC reads this at import time; without it every DVC call forks an analytics reporter.
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

from arq import create_pool
from arq.connections import RedisSettings

from app.settings import Settings
from workers.context import close_resources, open_resources
from workers.execution import start_stage_server
from workers.execution.shell import stage_shell_path
from workers.settings import build_workers

logger = logging.getLogger("workers")


async def serve() -> None:
    settings = Settings.from_env()
    ctx: dict[str, Any] = {}
    redis = await create_pool(RedisSettings.from_dsn(settings.redis_url))
    ctx["redis"] = redis
    await open_resources(ctx)
    workers = build_workers(settings, ctx)
    # DVC warm in a stage server before the first run asks for it (see workers.execution), and the stage shell built
    # (compiled, ~0.1 s) before the first stage needs it.
    start_stage_server()
    await asyncio.to_thread(stage_shell_path)
    tasks = [asyncio.create_task(w.main(), name=f"arq:{w.queue_name}") for w in workers]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    logger.info("worker serving %s", ", ".join(w.queue_name for w in workers))
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for worker in workers:
        # Cancels running jobs; a run job answers that by stopping its stages and failing the run.
        with contextlib.suppress(Exception):
            await worker.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await close_resources(ctx)
    await redis.aclose()


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    asyncio.run(serve())


if __name__ == "__main__":
    main()
