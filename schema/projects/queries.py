"""Queries on projects."""

from __future__ import annotations

import strawberry

from schema.context import Info
from schema.pagination import decode_cursor
from schema.projects.types import Project, ProjectConnection, ProjectResult


@strawberry.type
class ProjectQueries:
    @strawberry.field(description="Your projects, oldest first.")
    async def projects(self, info: Info, first: int = 20, after: str | None = None) -> ProjectConnection:
        page = await info.context.services.projects.list_page(
            caller=info.context.caller, first=info.context.page_size(first), after=decode_cursor(after)
        )
        info.context.loaders.projects.prime_many({p.id: p for p in page.items})  # the caller's own: access known
        return ProjectConnection.from_page(page)

    @strawberry.field(description="One project by id.")
    async def project(self, info: Info, id: strawberry.ID) -> ProjectResult:
        return Project.from_domain(await info.context.services.projects.get(caller=info.context.caller, project_id=id))
