"""Per-request DataLoaders: a list's related documents are read once per request, not once per item.

Without them, ``pipelines { lastRun }`` read each run and, for its access check, the run's project again, for
every pipeline of the page; ``runs { pipeline project }`` did the same per run. Here each project is read (and the
caller's access to it checked) once per request, and each run or pipeline once, the reads of one list running
concurrently. They are by-id lookups, not one ``$in`` query: FerretDB v1 does not push ``$in`` down to
PostgreSQL (docs/benchmarks.md), so on the local stack a batch would scan the collection, while a lookup by
``_id`` is an index read on both FerretDB and MongoDB.

Each loader answers as the service it stands for: a document the caller may not see is NotFound, like a
missing one. On a WebSocket the context lives as long as the connection, so there the loaders batch but do not
cache (a subscription's later results must not see documents read when it started).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TypeVar

from strawberry.dataloader import DataLoader

from app.domain.errors import NotFound
from app.domain.pages import Page
from app.domain.pipelines import Pipeline
from app.domain.projects import Project
from app.domain.runs import Run
from app.services.pipelines import PipelineStatusReport
from app.state import Services

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

PipelinePageKey = tuple[str, int, str | None]
"""(project id, page size, cursor)."""


async def _each(keys: Sequence[K], read: Callable[[K], Awaitable[V]]) -> list[V | BaseException]:
    """``read`` every distinct key once, concurrently; a key's error is its result (DataLoader raises it for that
    key only). Distinct: without a cache (WebSockets) DataLoader hands a batch its repeated keys too."""
    distinct = list(dict.fromkeys(keys))
    results = await asyncio.gather(*(read(key) for key in distinct), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result  # cancellation and the like are not a key's answer
    by_key = dict(zip(distinct, results, strict=True))
    return [by_key[key] for key in keys]


class Loaders:
    def __init__(self, services: Services, caller: str, *, cache: bool = True) -> None:
        self._services = services
        self._caller = caller
        self.projects: DataLoader[str, Project] = DataLoader(self._load_projects, cache=cache)
        """Projects the caller may see (access checked as ``ProjectService.get``)."""
        self.runs: DataLoader[str, Run] = DataLoader(self._load_runs, cache=cache)
        self.pipelines: DataLoader[str, Pipeline] = DataLoader(self._load_pipelines, cache=cache)
        self.project_pipelines: DataLoader[PipelinePageKey, Page[Pipeline]] = DataLoader(
            self._load_project_pipelines, cache=cache
        )
        self.pipeline_status: DataLoader[str, PipelineStatusReport] = DataLoader(
            self._load_pipeline_status, cache=cache
        )

    async def _load_projects(self, keys: list[str]) -> list[Project | BaseException]:
        return await _each(keys, lambda key: self._services.projects.get(caller=self._caller, project_id=key))

    async def _visible(self, project_id: str, resource: str, key: str) -> None:
        """The caller may see ``project_id``, or the document ``key`` in it is reported NotFound."""
        try:
            await self.projects.load(project_id)
        except NotFound:
            raise NotFound(resource, key) from None

    async def _load_runs(self, keys: list[str]) -> list[Run | BaseException]:
        async def read(run_id: str) -> Run:
            run = await self._services.runs.runs.get(run_id)
            await self._visible(run.project_id, "run", run_id)
            return run

        return await _each(keys, read)

    async def _load_pipelines(self, keys: list[str]) -> list[Pipeline | BaseException]:
        async def read(pipeline_id: str) -> Pipeline:
            pipeline = await self._services.pipelines.pipelines.get(pipeline_id)
            await self._visible(pipeline.project_id, "pipeline", pipeline_id)
            return pipeline

        return await _each(keys, read)

    async def _load_project_pipelines(self, keys: list[PipelinePageKey]) -> list[Page[Pipeline] | BaseException]:
        async def read(key: PipelinePageKey) -> Page[Pipeline]:
            project_id, first, after = key
            await self.projects.load(project_id)
            return await self._services.pipelines.pipelines.list_page(project_id=project_id, first=first, after=after)

        return await _each(keys, read)

    async def _load_pipeline_status(self, keys: list[str]) -> list[PipelineStatusReport | BaseException]:
        async def read(pipeline_id: str) -> PipelineStatusReport:
            pipeline = await self.pipelines.load(pipeline_id)
            return await self._services.pipelines.status_of(pipeline)

        return await _each(keys, read)
