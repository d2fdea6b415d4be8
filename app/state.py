"""What the lifespan opens once and every request shares."""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import ArqRedis
from pymongo import AsyncMongoClient

from app.db import Database, Document
from app.events.hub import EventHub
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


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    mongo: AsyncMongoClient[Document]
    db: Database
    redis: ArqRedis
    hub: EventHub
    services: Services
    follower: RunFollower
