"""What every job needs, opened once per worker process in arq's on_startup (workers.__main__)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from pymongo import AsyncMongoClient

from app.db import Document, create_client, ensure_indexes
from app.repositories.events import EventRepository
from app.repositories.experiments import ExperimentRepository
from app.repositories.pipelines import PipelineRepository
from app.repositories.projects import ProjectRepository
from app.repositories.results import ResultsRepository
from app.repositories.runs import RunRepository
from app.repositories.sweeps import SweepRepository
from app.repositories.users import UserRepository
from app.services.experiment_states import ExperimentStates
from app.settings import Settings
from workers import dvcops

RESOURCES_KEY = "resources"


@dataclass(frozen=True, slots=True)
class WorkerResources:
    settings: Settings
    mongo: AsyncMongoClient[Document]
    redis: ArqRedis
    projects: ProjectRepository
    pipelines: PipelineRepository
    runs: RunRepository
    events: EventRepository
    results: ResultsRepository
    users: UserRepository
    experiments: ExperimentRepository
    sweeps: SweepRepository
    experiment_states: ExperimentStates
    """The one writer of experiments' states (stored, then published)."""

    def workspace(self, project_id: str) -> Path:
        return self.settings.workspace_root / project_id


async def open_resources(ctx: dict[str, Any]) -> None:
    """The process's own MongoDB client and Redis pool (not an arq worker's pool: the runs a stopping worker settles
    still need Redis after another worker of the process has closed its pool)."""
    settings = Settings.from_env()
    settings.workspace_root.mkdir(parents=True, exist_ok=True)
    mongo = create_client(settings.mongodb_url)
    try:
        db = mongo[settings.mongodb_database]
        await ensure_indexes(db)
        redis = await create_pool(RedisSettings.from_dsn(settings.redis_url))
    except BaseException:
        await mongo.close()
        raise
    await asyncio.to_thread(dvcops.warm_up)
    experiments = ExperimentRepository(db)
    ctx[RESOURCES_KEY] = WorkerResources(
        settings=settings,
        mongo=mongo,
        redis=redis,
        projects=ProjectRepository(db),
        pipelines=PipelineRepository(db),
        runs=RunRepository(db),
        events=EventRepository(db),
        results=ResultsRepository(db),
        users=UserRepository(db),
        experiments=experiments,
        sweeps=SweepRepository(db),
        experiment_states=ExperimentStates(experiments=experiments, redis=redis),
    )


async def close_resources(ctx: dict[str, Any]) -> None:
    resources: WorkerResources | None = ctx.get(RESOURCES_KEY)
    if resources is not None:
        await resources.redis.aclose()
        await resources.mongo.close()


def resources_of(ctx: dict[str, Any]) -> WorkerResources:
    resources: WorkerResources = ctx[RESOURCES_KEY]
    return resources
