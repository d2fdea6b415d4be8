"""One lifespan opens MongoDB, the arq pool and the event hub, and closes them in reverse order on shutdown, also
when start-up fails half way (one AsyncExitStack: each resource is entered once, right after it is opened)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from arq import create_pool
from arq.connections import RedisSettings
from starlette.applications import Starlette

from app.db import create_client, ensure_indexes
from app.events.hub import EventHub
from app.services.experiment_updates import ExperimentFollower
from app.services.run_updates import RunFollower
from app.settings import Settings
from app.state import AppState, Services

logger = logging.getLogger(__name__)

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[dict[str, AppState]]]


def build_lifespan(settings: Settings) -> Lifespan:
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[dict[str, AppState]]:
        settings.workspace_root.mkdir(parents=True, exist_ok=True)
        async with AsyncExitStack() as stack:
            mongo = await stack.enter_async_context(create_client(settings.mongodb_url))
            db = mongo[settings.mongodb_database]
            try:
                await ensure_indexes(db)
            except Exception:
                # Start anyway: /health reports MongoDB as down and requests answer clear errors until it is back.
                logger.exception("could not ensure MongoDB indexes at start-up")
            redis = await stack.enter_async_context(await create_pool(RedisSettings.from_dsn(settings.redis_url)))
            hub = EventHub(redis)
            stack.push_async_callback(hub.close)
            services = Services.build(db=db, redis=redis, settings=settings)
            yield {
                "app": AppState(
                    settings=settings,
                    mongo=mongo,
                    db=db,
                    redis=redis,
                    hub=hub,
                    services=services,
                    follower=RunFollower(runs=services.runs, hub=hub),
                    experiment_follower=ExperimentFollower(
                        experiments=services.experiments, sweeps=services.sweeps, hub=hub
                    ),
                )
            }

    return lifespan
