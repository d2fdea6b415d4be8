"""Creating, finding and deleting projects (each one a DVC workspace)."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.errors import DomainError
from app.domain.names import check_name, check_repository_url
from app.domain.pages import Page
from app.domain.projects import Project
from app.jobs import JobDispatcher
from app.repositories.projects import ProjectRepository
from app.settings import Settings


@dataclass(frozen=True, slots=True)
class ProjectService:
    projects: ProjectRepository
    jobs: JobDispatcher
    settings: Settings

    async def create(self, *, owner: str, name: str, description: str | None, repository_url: str | None) -> Project:
        check_name(name, field="name", what="project")
        if repository_url is not None:
            check_repository_url(repository_url, field="repositoryUrl")
        # The unique index reserves the name atomically; the workspace is made by a worker.
        project = await self.projects.create(
            owner=owner, name=name, description=description, repository_url=repository_url
        )
        wait = self.settings.clone_wait_seconds if repository_url else self.settings.job_wait_seconds
        try:
            await self.jobs.call("init_project", project.id, repository_url, wait_seconds=wait)
        except DomainError:
            await self.projects.delete(project.id)
            raise
        return await self.projects.get(project.id)

    async def get(self, *, owner: str, project_id: str) -> Project:
        return await self.projects.get(project_id, owner=owner)

    async def list_page(self, *, owner: str, first: int, after: str | None) -> Page[Project]:
        return await self.projects.list_page(owner=owner, first=first, after=after)

    async def delete(self, *, owner: str, project_id: str) -> Project:
        project = await self.projects.get(project_id, owner=owner)
        await self.jobs.call("delete_project", project.id)
        return project
