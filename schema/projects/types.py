"""GraphQL types of projects."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from app.domain.pages import Page
from app.domain.projects import DEFAULT_REQUIREMENTS_PATH
from app.domain.projects import Project as DomainProject
from app.domain.projects import ProjectState as DomainProjectState
from app.domain.projects import ResourceLimits as DomainResourceLimits
from app.domain.users import Role as DomainRole
from schema.context import Info
from schema.errors import NotFoundError
from schema.pagination import Connection, decode_cursor, encode_cursor

if TYPE_CHECKING:
    from schema.files.types import FolderResult, TextFileResult
    from schema.pipelines.types import PipelineConnection
    from schema.results.history_types import RevisionsResult, WorkingTreeResult


# The domain enum is the GraphQL enum; strawberry.enum registers it (as a statement: mypy takes no call as a type).
ProjectState = DomainProjectState
strawberry.enum(ProjectState, description="Whether the workspace is ready for use.")
Role = DomainRole
strawberry.enum(
    Role,
    description="What a member may do: VIEWER reads, EDITOR also changes and runs, "
    "OWNER also deletes and manages members.",
)


@strawberry.type(description="A member of a project and their role.")
class ProjectMember:
    user_id: strawberry.ID = strawberry.field(description="The member.")
    role: Role = strawberry.field(description="What they may do.")


@strawberry.type(description="What one stage command of the project may use (enforced with setrlimit).")
class ResourceLimits:
    cpu_seconds: int = strawberry.field(description="CPU time, in seconds.")
    memory_bytes: float = strawberry.field(description="Address space, in bytes.")
    open_files: int = strawberry.field(description="Open file descriptors.")
    file_size_bytes: float = strawberry.field(description="The largest file a command may write, in bytes.")
    log_bytes: int = strawberry.field(description="Log kept per stage, in bytes; past it the log says it was cut.")

    @classmethod
    def from_domain(cls, limits: DomainResourceLimits) -> ResourceLimits:
        return cls(
            cpu_seconds=limits.cpu_seconds,
            memory_bytes=limits.memory_bytes,
            open_files=limits.open_files,
            file_size_bytes=limits.file_size_bytes,
            log_bytes=limits.log_bytes,
        )


@strawberry.type(description="A project: one DVC workspace (a git repository with DVC) owned by one user.")
class Project:
    id: strawberry.ID = strawberry.field(description="The project's id.")
    name: str = strawberry.field(description="Unique among the owner's projects.")
    owner: str = strawberry.field(description="The id of the user who created the project.")
    description: str | None = strawberry.field(description="Free text.")
    repository_url: str | None = strawberry.field(description="Where the workspace was cloned from, if anywhere.")
    state: ProjectState = strawberry.field(description="Whether the workspace is ready.")
    created_at: datetime = strawberry.field(description="When the project was created (UTC).")
    members: list[ProjectMember] = strawberry.field(description="Who may see and change it.")
    limits: ResourceLimits = strawberry.field(description="Limits on each stage command of the project.")
    requirements_path: str = strawberry.field(
        description=(
            "The Python requirements file (relative to the workspace) that each run builds the stages' own "
            "environment from, as its first step; without the file stages get a plain Python."
        )
    )
    network_allowed: bool = strawberry.field(
        description=(
            "Whether the project's stage commands may reach outside addresses (to download data, say); never the "
            "service's own host, its MongoDB or Redis. Off unless an owner allowed it."
        )
    )

    @classmethod
    def from_domain(cls, project: DomainProject) -> Project:
        return cls(
            id=strawberry.ID(project.id),
            name=project.name,
            owner=project.owner,
            description=project.description,
            repository_url=project.repository_url,
            state=project.state,
            created_at=project.created_at,
            limits=ResourceLimits.from_domain(project.limits),
            requirements_path=project.requirements_path or DEFAULT_REQUIREMENTS_PATH,
            network_allowed=project.network_allowed,
            members=[ProjectMember(user_id=strawberry.ID(m.user_id), role=m.role) for m in project.members],
        )

    @strawberry.field(description="The project's pipelines, oldest first.")
    async def pipelines(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Annotated[PipelineConnection, strawberry.lazy("schema.pipelines.types")]:
        from schema.pipelines.types import PipelineConnection

        page = await info.context.loaders.project_pipelines.load(
            (self.id, info.context.page_size(first), decode_cursor(after))
        )
        return PipelineConnection.from_page(page)

    @strawberry.field(description="List a folder of the workspace ('.' is the project root).")
    async def files(
        self, info: Info, path: str = "."
    ) -> Annotated[FolderResult, strawberry.lazy("schema.files.types")]:
        from schema.files.types import Folder

        entries = await info.context.services.files.list_folder(
            caller=info.context.caller, project_id=self.id, path=path
        )
        return Folder.from_domain(path, entries)

    @strawberry.field(description="Read a small UTF-8 text file of the workspace.")
    async def file(self, info: Info, path: str) -> Annotated[TextFileResult, strawberry.lazy("schema.files.types")]:
        from schema.files.types import TextFile

        text = await info.context.services.files.read_text(caller=info.context.caller, project_id=self.id, path=path)
        return TextFile.from_domain(text)

    @strawberry.field(description="Branches, tags and recent commits of the workspace (git). Asks a worker.")
    async def revisions(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Annotated[RevisionsResult, strawberry.lazy("schema.results.history_types")]:
        from schema.results.history_types import Revisions, offset_of

        offset = offset_of(after)
        revisions = await info.context.services.history.revisions(
            caller=info.context.caller, project_id=self.id, skip=offset, count=info.context.page_size(first)
        )
        return Revisions.from_domain(revisions, offset)

    @strawberry.field(description="Tracked files modified since the last commit (a dirty workspace). Asks a worker.")
    async def working_tree(
        self, info: Info
    ) -> Annotated[WorkingTreeResult, strawberry.lazy("schema.results.history_types")]:
        from schema.results.history_types import WorkingTree

        tree = await info.context.services.history.working_tree(caller=info.context.caller, project_id=self.id)
        return WorkingTree.from_domain(tree)


@strawberry.type(description="A page of projects.")
class ProjectConnection(Connection[Project]):
    @classmethod
    def from_page(cls, page: Page[DomainProject]) -> ProjectConnection:
        projects = ((encode_cursor(p.id), Project.from_domain(p)) for p in page.items)
        return cls.of(projects, has_next_page=page.has_next_page)


ProjectResult = Annotated[Project | NotFoundError, strawberry.union("ProjectResult")]
