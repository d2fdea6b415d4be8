"""One lifespan opens MongoDB, the arq pool and the event hub, and closes them in reverse order on shutdown, also
when start-up fails half way (one AsyncExitStack: each resource is entered once, right after it is opened)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from arq import create_pool
from arq.connections import RedisSettings
from starlette.applications import Starlette

from app.db import create_client, ensure_indexes
from app.events.hub import EventHub
from app.jobs import JobDispatcher
from app.repositories.events import EventRepository
from app.repositories.experiments import ExperimentRepository
from app.repositories.pipelines import PipelineRepository
from app.repositories.projects import ProjectRepository
from app.repositories.results import ResultsRepository
from app.repositories.runs import RunRepository
from app.repositories.sweeps import SweepRepository
from app.repositories.users import UserRepository
from app.services.access import Access
from app.services.auth import AuthService
from app.services.experiments import ExperimentService
from app.services.files import FileService
from app.services.history import HistoryService
from app.services.pipelines import PipelineService
from app.services.projects import ProjectService
from app.services.rate_limit import RateLimiter
from app.services.results import ResultsService
from app.services.run_updates import RunFollower
from app.services.runs import RunService
from app.services.sweeps import SweepService
from app.services.workspace_holder import WorkspaceHolder
from app.settings import Settings
from app.state import AppState, Services

logger = logging.getLogger(__name__)


def build_lifespan(settings: Settings):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[dict[str, AppState]]:
        async with AsyncExitStack() as stack:
            mongo = create_client(settings.mongodb_url)
            stack.push_async_callback(mongo.close)
            db = mongo[settings.mongodb_database]
            try:
                await ensure_indexes(db)
            except Exception:
                # Start anyway: /health reports MongoDB as down and requests answer clear errors until it is back.
                logger.exception("could not ensure MongoDB indexes at start-up")
            redis = await create_pool(RedisSettings.from_dsn(settings.redis_url))
            stack.push_async_callback(redis.aclose)
            access = Access(projects=ProjectRepository(db))
            users = UserRepository(db)
            jobs = JobDispatcher(redis, queue_name=settings.queue_name, wait_seconds=settings.job_wait_seconds)
            runs = RunRepository(db)
            holder = WorkspaceHolder(redis=redis, runs=runs)
            pipeline_service = PipelineService(
                access=access, pipelines=PipelineRepository(db), jobs=jobs, holder=holder
            )
            run_service = RunService(
                access=access,
                pipeline_service=pipeline_service,
                runs=runs,
                events=EventRepository(db),
                jobs=jobs,
                redis=redis,
                settings=settings,
            )
            results = ResultsRepository(db)
            experiment_service = ExperimentService(
                runs=run_service, experiments=ExperimentRepository(db), results=results, jobs=jobs, redis=redis
            )
            services = Services(
                auth=AuthService(users=users, max_tokens_per_user=settings.max_tokens_per_user),
                rate_limit=RateLimiter(redis=redis, per_minute=settings.work_requests_per_minute),
                projects=ProjectService(access=access, users=users, jobs=jobs, settings=settings),
                pipelines=pipeline_service,
                files=FileService(access=access, settings=settings),
                runs=run_service,
                results=ResultsService(
                    access=access,
                    runs=run_service,
                    pipelines=pipeline_service,
                    results=results,
                    jobs=jobs,
                ),
                history=HistoryService(access=access, runs=run_service, pipelines=pipeline_service, jobs=jobs),
                experiments=experiment_service,
                sweeps=SweepService(experiments=experiment_service, sweeps=SweepRepository(db)),
            )
            hub = EventHub(redis)
            stack.push_async_callback(hub.close)
            settings.workspace_root.mkdir(parents=True, exist_ok=True)
            state = AppState(
                settings=settings,
                mongo=mongo,
                db=db,
                redis=redis,
                hub=hub,
                services=services,
                follower=RunFollower(runs=run_service, hub=hub),
            )
            yield {"app": state}

    return lifespan
