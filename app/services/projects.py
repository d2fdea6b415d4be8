"""Creating, finding and deleting projects (each one a DVC workspace)."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from app.domain.errors import Conflict, InvalidInput, Issue, NotFound, WorkspaceError
from app.domain.names import RepositoryPolicy, check_name, check_repository_url, redact_repository_url
from app.domain.pages import Page
from app.domain.projects import LIMIT_RANGES, Project, ResourceLimits
from app.domain.users import Member, Role
from app.jobs import JobDispatcher
from app.repositories.projects import ProjectRepository
from app.repositories.users import UserRepository
from app.services.access import Access
from app.settings import Settings
from app.workspace_paths import split_relative

# The service's own files (source and interpreter): never a repository to clone, whatever the allowed roots.
SERVICE_INSTALL = (Path(__file__).resolve().parents[2], Path(sys.prefix).resolve())
_ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:[\w.@+-]+/)*[\w.@+-]+")
MAX_CLONE_ERROR_CHARACTERS = 300


def repository_policy(settings: Settings) -> RepositoryPolicy:
    return RepositoryPolicy(
        schemes=frozenset(settings.repository_url_schemes),
        local_roots=tuple(settings.allowed_local_repository_roots),
        forbidden_roots=(settings.workspace_root, *SERVICE_INSTALL),
    )


def summarise_clone_error(message: str, *, workspace_root: Path, repository_url: str) -> str:
    """The worker's clone error as a user may see it: no credentials, no absolute server paths, one short line."""
    text = message.replace(repository_url, redact_repository_url(repository_url))
    text = text.replace(str(workspace_root), ".")
    for root in SERVICE_INSTALL:
        text = text.replace(str(root), "<service>")
    text = _ABSOLUTE_PATH.sub(lambda m: m.group(0) if repository_url.startswith(m.group(0)) else "<path>", text)
    text = " ".join(text.split())
    return text if len(text) <= MAX_CLONE_ERROR_CHARACTERS else text[: MAX_CLONE_ERROR_CHARACTERS - 3] + "..."


@dataclass(frozen=True, slots=True)
class ProjectService:
    access: Access
    users: UserRepository
    jobs: JobDispatcher
    settings: Settings

    @property
    def projects(self) -> ProjectRepository:
        return self.access.projects

    async def create(self, *, owner: str, name: str, description: str | None, repository_url: str | None) -> Project:
        check_name(name, field="name", what="project")
        if repository_url is not None:
            check_repository_url(repository_url, field="repositoryUrl", policy=repository_policy(self.settings))
        # The unique index reserves the name atomically; the workspace is made by a worker. Credentials in the URL
        # go to the clone job only: the stored (and shown) URL has them as ***.
        project = await self.projects.create(
            owner=owner,
            name=name,
            description=description,
            repository_url=redact_repository_url(repository_url) if repository_url else None,
        )
        wait = self.settings.clone_wait_seconds if repository_url else self.settings.job_wait_seconds
        try:
            await self.jobs.call("init_project", project.id, repository_url, wait_seconds=wait)
        except BaseException as error:
            # Whatever failed (a bad clone, no worker, Redis down), the name is free again.
            await self.projects.delete(project.id)
            if isinstance(error, WorkspaceError) and repository_url:
                summary = summarise_clone_error(
                    error.message, workspace_root=self.settings.workspace_root, repository_url=repository_url
                )
                raise WorkspaceError(summary) from None
            raise
        return await self.projects.get(project.id)

    async def get(self, *, caller: str, project_id: str) -> Project:
        return await self.access.project(caller=caller, project_id=project_id, needs=Role.VIEWER)

    async def list_page(self, *, caller: str, first: int, after: str | None) -> Page[Project]:
        return await self.projects.list_page(member=caller, first=first, after=after)

    async def delete(self, *, caller: str, project_id: str) -> Project:
        project = await self.access.project(caller=caller, project_id=project_id, needs=Role.OWNER)
        await self.jobs.call("delete_project", project.id)
        return project

    async def set_member(self, *, caller: str, project_id: str, user_name: str, role: Role) -> Project:
        """Add a member, or change a member's role."""
        project = await self.access.project(caller=caller, project_id=project_id, needs=Role.OWNER)
        user = await self.users.find_user_by_name(user_name)
        if user is None:
            raise NotFound("user", user_name)
        members = [m for m in project.members if m.user_id != user.id] + [Member(user_id=user.id, role=role)]
        _keep_an_owner(members)
        return await self.projects.set_members(project.id, members)

    async def set_limits(self, *, caller: str, project_id: str, changes: dict[str, int]) -> Project:
        """Change some limits; the others keep their current values."""
        project = await self.access.project(caller=caller, project_id=project_id, needs=Role.OWNER)
        limits = replace(project.limits, **changes)
        _check_limits(limits)
        return await self.projects.set_limits(project.id, limits)

    async def set_requirements_path(self, *, caller: str, project_id: str, path: str | None) -> Project:
        """Where the project's Python requirements file is, relative to the workspace (None: requirements.txt)."""
        project = await self.access.project(caller=caller, project_id=project_id, needs=Role.OWNER)
        if path is not None:
            path = "/".join(split_relative(path, field="requirementsPath"))
        return await self.projects.set_requirements_path(project.id, path)

    async def set_network(self, *, caller: str, project_id: str, allowed: bool) -> Project:
        """Allow or forbid the project's stage commands a network (owners only); applies from the next stage."""
        project = await self.access.project(caller=caller, project_id=project_id, needs=Role.OWNER)
        return await self.projects.set_network_allowed(project.id, allowed)

    async def remove_member(self, *, caller: str, project_id: str, user_name: str) -> Project:
        project = await self.access.project(caller=caller, project_id=project_id, needs=Role.OWNER)
        user = await self.users.find_user_by_name(user_name)
        if user is None or project.role_of(user.id) is None:
            raise NotFound("member", user_name)
        members = [m for m in project.members if m.user_id != user.id]
        _keep_an_owner(members)
        return await self.projects.set_members(project.id, members)


def _check_limits(limits: ResourceLimits) -> None:
    issues = [
        Issue(path=f"limits.{_camel(key)}", message=f"must be between {low} and {high}")
        for key, value in limits.to_dict().items()
        for low, high in [LIMIT_RANGES[key]]
        if not low <= value <= high
    ]
    if issues:
        raise InvalidInput(issues)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _keep_an_owner(members: list[Member]) -> None:
    if not any(m.role == Role.OWNER for m in members):
        raise Conflict("a project keeps at least one owner; make someone else owner first")
