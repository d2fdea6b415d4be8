"""What the lifespan opens once and every request shares."""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import ArqRedis
from pymongo import AsyncMongoClient

from app.db import Database, Document
from app.services.files import FileService
from app.services.pipelines import PipelineService
from app.services.projects import ProjectService
from app.settings import Settings


@dataclass(frozen=True, slots=True)
class Services:
    projects: ProjectService
    pipelines: PipelineService
    files: FileService


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    mongo: AsyncMongoClient[Document]
    db: Database
    redis: ArqRedis
    services: Services
