"""Mutations on projects."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.domain.projects import ResourceLimits as DomainResourceLimits
from schema.context import Info
from schema.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    ValidationError,
    WorkerUnavailableError,
    WorkspaceBusyError,
    WorkspaceError,
)
from schema.projects.types import Project, Role


@strawberry.input(description="A new project: an empty workspace, or a clone of an existing git repository.")
class CreateProjectInput:
    name: str = strawberry.field(description="Unique among your projects; letters, digits, '_', '-', '.'.")
    description: str | None = strawberry.field(default=None, description="Free text.")
    repository_url: str | None = strawberry.field(
        default=None,
        description="Clone this git repository (URL or absolute local path); its dvc.yaml files become pipelines.",
    )


@strawberry.type(description="The project was created and its workspace is ready.")
class ProjectCreated:
    project: Project = strawberry.field(description="The new project.")


@strawberry.type(description="The project, its pipelines and its workspace were deleted.")
class ProjectDeleted:
    id: strawberry.ID = strawberry.field(description="The deleted project's id.")
    name: str = strawberry.field(description="The deleted project's name.")


@strawberry.input(description="Limits on each stage command; fields left out keep their current value.")
class LimitsInput:
    cpu_seconds: int | None = strawberry.field(default=None, description="CPU time, in seconds.")
    memory_bytes: float | None = strawberry.field(default=None, description="Address space, in bytes.")
    open_files: int | None = strawberry.field(default=None, description="Open file descriptors.")
    file_size_bytes: float | None = strawberry.field(default=None, description="Largest file written, in bytes.")
    log_bytes: int | None = strawberry.field(default=None, description="Log kept per stage, in bytes.")

    def changes(self) -> dict[str, int]:
        fields = DomainResourceLimits().to_dict()
        return {key: int(getattr(self, key)) for key in fields if getattr(self, key) is not None}


@strawberry.type(description="The project's limits changed.")
class LimitsChanged:
    project: Project = strawberry.field(description="The project with its limits now.")


LimitsResult = Annotated[
    LimitsChanged | NotFoundError | ForbiddenError | ValidationError, strawberry.union("LimitsResult")
]


@strawberry.type(description="The project's requirements file changed: the next run builds its environment from it.")
class RequirementsPathChanged:
    project: Project = strawberry.field(description="The project with its requirements path now.")


RequirementsPathResult = Annotated[
    RequirementsPathChanged | NotFoundError | ForbiddenError | ValidationError,
    strawberry.union("RequirementsPathResult"),
]


@strawberry.type(description="The project's network setting changed: stages started from now on follow it.")
class NetworkChanged:
    project: Project = strawberry.field(description="The project with its network setting now.")


NetworkResult = Annotated[NetworkChanged | NotFoundError | ForbiddenError, strawberry.union("NetworkResult")]


@strawberry.type(description="The project's members changed.")
class MembersChanged:
    project: Project = strawberry.field(description="The project with its members now.")


MembersResult = Annotated[
    MembersChanged | NotFoundError | ForbiddenError | ConflictError, strawberry.union("MembersResult")
]

CreateProjectResult = Annotated[
    ProjectCreated
    | ValidationError
    | ConflictError
    | RateLimitedError
    | WorkerUnavailableError
    | WorkspaceBusyError
    | WorkspaceError,
    strawberry.union("CreateProjectResult"),
]
DeleteProjectResult = Annotated[
    ProjectDeleted | NotFoundError | ForbiddenError | WorkerUnavailableError | WorkspaceBusyError,
    strawberry.union("DeleteProjectResult"),
]


@strawberry.type
class ProjectMutations:
    @strawberry.mutation(description="Create a project: git init + dvc init, or a clone of a repository.")
    async def create_project(self, info: Info, input: CreateProjectInput) -> CreateProjectResult:
        await info.context.spend_work()
        project = await info.context.services.projects.create(
            owner=info.context.caller,
            name=input.name,
            description=input.description,
            repository_url=input.repository_url,
        )
        return ProjectCreated(project=Project.from_domain(project))

    @strawberry.mutation(description="Add a member to a project or change their role (owners only).")
    async def set_project_member(
        self, info: Info, project_id: strawberry.ID, user_name: str, role: Role
    ) -> MembersResult:
        project = await info.context.services.projects.set_member(
            caller=info.context.caller, project_id=project_id, user_name=user_name, role=role
        )
        return MembersChanged(project=Project.from_domain(project))

    @strawberry.mutation(description="Remove a member from a project (owners only; a project keeps an owner).")
    async def remove_project_member(self, info: Info, project_id: strawberry.ID, user_name: str) -> MembersResult:
        project = await info.context.services.projects.remove_member(
            caller=info.context.caller, project_id=project_id, user_name=user_name
        )
        return MembersChanged(project=Project.from_domain(project))

    @strawberry.mutation(description="Set the limits on each stage command of a project (owners only).")
    async def set_project_limits(self, info: Info, project_id: strawberry.ID, limits: LimitsInput) -> LimitsResult:
        project = await info.context.services.projects.set_limits(
            caller=info.context.caller, project_id=project_id, changes=limits.changes()
        )
        return LimitsChanged(project=Project.from_domain(project))

    @strawberry.mutation(
        description=(
            "Set the project's Python requirements file, relative to the workspace (owners only); null resets it to "
            "requirements.txt."
        )
    )
    async def set_project_requirements_path(
        self, info: Info, project_id: strawberry.ID, path: str | None
    ) -> RequirementsPathResult:
        project = await info.context.services.projects.set_requirements_path(
            caller=info.context.caller, project_id=project_id, path=path
        )
        return RequirementsPathChanged(project=Project.from_domain(project))

    @strawberry.mutation(
        description=(
            "Allow or forbid the project's stage commands a network (owners only; off by default). Allowed, a stage "
            "reaches outside addresses through user-mode networking, never the service's host, MongoDB or Redis."
        )
    )
    async def set_project_network(self, info: Info, project_id: strawberry.ID, allowed: bool) -> NetworkResult:
        project = await info.context.services.projects.set_network(
            caller=info.context.caller, project_id=project_id, allowed=allowed
        )
        return NetworkChanged(project=Project.from_domain(project))

    @strawberry.mutation(description="Delete a project with its pipelines and its workspace on disk.")
    async def delete_project(self, info: Info, id: strawberry.ID) -> DeleteProjectResult:
        project = await info.context.services.projects.delete(caller=info.context.caller, project_id=id)
        return ProjectDeleted(id=strawberry.ID(project.id), name=project.name)
