"""What the lifespan opens once and every request shares, and how the services are wired on it."""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import ArqRedis
from pymongo import AsyncMongoClient

from app.db import Database, Document
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
from app.services.experiment_states import ExperimentStates
from app.services.experiment_updates import ExperimentFollower
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


@dataclass(frozen=True, slots=True)
class Services:
    auth: AuthService
    rate_limit: RateLimiter
    projects: ProjectService
    pipelines: PipelineService
    files: FileService
    runs: RunService
    results: ResultsService
    history: HistoryService
    experiments: ExperimentService
    sweeps: SweepService

    @classmethod
    def build(cls, *, db: Database, redis: ArqRedis, settings: Settings) -> Services:
        """Every service on the shared clients; each repository and collaborator is made once and shared."""
        access = Access(projects=ProjectRepository(db))
        users = UserRepository(db)
        jobs = JobDispatcher(redis, queue_name=settings.queue_name, wait_seconds=settings.job_wait_seconds)
        runs = RunRepository(db)
        pipelines = PipelineService(
            access=access,
            pipelines=PipelineRepository(db),
            jobs=jobs,
            holder=WorkspaceHolder(redis=redis, runs=runs),
        )
        run_service = RunService(
            access=access,
            pipeline_service=pipelines,
            runs=runs,
            events=EventRepository(db),
            jobs=jobs,
            redis=redis,
            settings=settings,
        )
        results = ResultsRepository(db)
        experiment_repository = ExperimentRepository(db)
        experiments = ExperimentService(
            runs=run_service,
            experiments=experiment_repository,
            results=results,
            jobs=jobs,
            redis=redis,
            states=ExperimentStates(experiments=experiment_repository, redis=redis),
        )
        return cls(
            auth=AuthService(users=users, max_tokens_per_user=settings.max_tokens_per_user),
            rate_limit=RateLimiter(redis=redis, per_minute=settings.work_requests_per_minute),
            projects=ProjectService(access=access, users=users, jobs=jobs, settings=settings),
            pipelines=pipelines,
            files=FileService(access=access, settings=settings),
            runs=run_service,
            results=ResultsService(access=access, runs=run_service, pipelines=pipelines, results=results, jobs=jobs),
            history=HistoryService(access=access, runs=run_service, pipelines=pipelines, jobs=jobs),
            experiments=experiments,
            sweeps=SweepService(experiments=experiments, sweeps=SweepRepository(db)),
        )


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    mongo: AsyncMongoClient[Document]
    db: Database
    redis: ArqRedis
    hub: EventHub
    services: Services
    follower: RunFollower
    experiment_follower: ExperimentFollower
