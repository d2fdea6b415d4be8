"""Mutations on projects."""

from __future__ import annotations

from typing import Annotated

import strawberry

from schema.context import Info
from schema.errors import (
    ConflictError,
    NotFoundError,
    ValidationError,
    WorkerUnavailableError,
    WorkspaceBusyError,
    WorkspaceError,
)
from schema.projects.types import Project


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


CreateProjectResult = Annotated[
    ProjectCreated | ValidationError | ConflictError | WorkerUnavailableError | WorkspaceBusyError | WorkspaceError,
    strawberry.union("CreateProjectResult"),
]
DeleteProjectResult = Annotated[
    ProjectDeleted | NotFoundError | WorkerUnavailableError | WorkspaceBusyError,
    strawberry.union("DeleteProjectResult"),
]


@strawberry.type
class ProjectMutations:
    @strawberry.mutation(description="Create a project: git init + dvc init, or a clone of a repository.")
    async def create_project(self, info: Info, input: CreateProjectInput) -> CreateProjectResult:
        project = await info.context.services.projects.create(
            owner=info.context.owner,
            name=input.name,
            description=input.description,
            repository_url=input.repository_url,
        )
        return ProjectCreated(project=Project.from_domain(project))

    @strawberry.mutation(description="Delete a project with its pipelines and its workspace on disk.")
    async def delete_project(self, info: Info, id: strawberry.ID) -> DeleteProjectResult:
        project = await info.context.services.projects.delete(owner=info.context.owner, project_id=id)
        return ProjectDeleted(id=strawberry.ID(project.id), name=project.name)
