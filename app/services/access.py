"""Who may do what in a project. A non-member is told "not found", never "forbidden"."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.errors import Forbidden, NotFound
from app.domain.projects import Project
from app.domain.users import Role
from app.repositories.projects import ProjectRepository


@dataclass(frozen=True, slots=True)
class Access:
    projects: ProjectRepository

    async def project(self, *, caller: str, project_id: str, needs: Role) -> Project:
        project = await self.projects.get(project_id)
        role = project.role_of(caller)
        if role is None:
            raise NotFound("project", project_id)
        if not role.allows(needs):
            raise Forbidden(f"your role in this project is {role.value}; this needs {needs.value} or above")
        return project
