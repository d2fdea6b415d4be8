"""Queries on runs."""

from __future__ import annotations

from typing import Annotated

import strawberry

from schema.context import Info
from schema.errors import NotFoundError
from schema.pagination import decode_cursor
from schema.runs.types import Run, RunConnection, RunResult, RunState

RunsResult = Annotated[RunConnection | NotFoundError, strawberry.union("RunsResult")]


@strawberry.type
class RunQueries:
    @strawberry.field(description="Runs, newest first: all of yours, or one project's or pipeline's, by state.")
    async def runs(
        self,
        info: Info,
        project_id: strawberry.ID | None = None,
        pipeline_id: strawberry.ID | None = None,
        state: RunState | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> RunsResult:
        page = await info.context.services.runs.list_page(
            caller=info.context.caller,
            project_id=project_id,
            pipeline_id=pipeline_id,
            state=state,
            first=info.context.page_size(first),
            after=decode_cursor(after),
        )
        return RunConnection.from_page(page)

    @strawberry.field(description="One run by id, with its stages; each stage has its log.")
    async def run(self, info: Info, id: strawberry.ID) -> RunResult:
        return Run.from_domain(await info.context.services.runs.get(caller=info.context.caller, run_id=id))
