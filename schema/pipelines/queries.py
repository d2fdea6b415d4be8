"""Queries on pipelines."""

from __future__ import annotations

from typing import Annotated

import strawberry

from schema.context import Info
from schema.errors import NotFoundError
from schema.pagination import decode_cursor
from schema.pipelines.types import Pipeline, PipelineConnection, PipelineResult

PipelinesResult = Annotated[PipelineConnection | NotFoundError, strawberry.union("PipelinesResult")]


@strawberry.type
class PipelineQueries:
    @strawberry.field(description="A project's pipelines, oldest first.")
    async def pipelines(
        self, info: Info, project_id: strawberry.ID, first: int = 20, after: str | None = None
    ) -> PipelinesResult:
        page = await info.context.services.pipelines.list_page(
            caller=info.context.caller,
            project_id=project_id,
            first=info.context.page_size(first),
            after=decode_cursor(after),
        )
        info.context.loaders.pipelines.prime_many({p.id: p for p in page.items})  # seen: each item's fields reuse it
        return PipelineConnection.from_page(page)

    @strawberry.field(description="One pipeline by id, with its stages, validation, status and DAG.")
    async def pipeline(self, info: Info, id: strawberry.ID) -> PipelineResult:
        return Pipeline.from_domain(
            await info.context.services.pipelines.get(caller=info.context.caller, pipeline_id=id)
        )
