"""GraphQL types of a workspace's git history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from app.domain import history as domain
from app.domain.errors import InvalidInput, Issue
from schema.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
    WorkerUnavailableError,
    WorkspaceBusyError,
    WorkspaceError,
)
from schema.pagination import Connection, decode_cursor, encode_cursor

MAX_SKIPPED_COMMITS = 100_000


def offset_of(after: str | None) -> int:
    """Commit lists page by position: the cursor of a commit is its offset from the newest."""
    decoded = decode_cursor(after)
    if decoded is None:
        return 0
    if not decoded.isdigit() or int(decoded) > MAX_SKIPPED_COMMITS:
        raise InvalidInput([Issue(path="after", message="not a cursor this API gave out")])
    return int(decoded) + 1


@strawberry.type(description="A git commit of the workspace.")
class Commit:
    sha: str = strawberry.field(description="The full commit id.")
    message: str = strawberry.field(description="The subject line.")
    body: str = strawberry.field(description="The rest of the message.")
    author_name: str = strawberry.field(description="Who wrote it.")
    author_email: str = strawberry.field(description="Their e-mail, as recorded.")
    authored_at: datetime = strawberry.field(description="When.")

    @classmethod
    def from_domain(cls, commit: domain.Commit) -> Commit:
        return cls(
            sha=commit.sha,
            message=commit.subject,
            body=commit.body,
            author_name=commit.author_name,
            author_email=commit.author_email,
            authored_at=commit.authored_at,
        )


@strawberry.type(description="A page of commits, newest first.")
class CommitConnection(Connection[Commit]):
    @classmethod
    def from_domain(cls, page: domain.CommitPage, offset: int) -> CommitConnection:
        commits = ((encode_cursor(str(offset + i)), Commit.from_domain(c)) for i, c in enumerate(page.commits))
        return cls.of(commits, has_next_page=page.has_next_page)


@strawberry.type(description="A branch or a tag.")
class GitRef:
    name: str = strawberry.field(description="Its short name.")
    sha: str = strawberry.field(description="The commit it points to.")
    message: str | None = strawberry.field(description="An annotated tag's message.")

    @classmethod
    def from_domain(cls, ref: domain.Ref) -> GitRef:
        return cls(name=ref.name, sha=ref.sha, message=ref.message)


@strawberry.type(description="What can be compared: branches, tags and recent commits of the workspace.")
class Revisions:
    current_branch: str | None = strawberry.field(description="The branch checked out (null when detached).")
    branches: list[GitRef] = strawberry.field(description="Every branch.")
    tags: list[GitRef] = strawberry.field(description="Every tag.")
    commits: CommitConnection = strawberry.field(description="Commits reachable from HEAD, newest first.")

    @classmethod
    def from_domain(cls, revisions: domain.Revisions, offset: int) -> Revisions:
        return cls(
            current_branch=revisions.current_branch,
            branches=[GitRef.from_domain(b) for b in revisions.branches],
            tags=[GitRef.from_domain(t) for t in revisions.tags],
            commits=CommitConnection.from_domain(revisions.commits, offset),
        )


@strawberry.type(description="A tracked file that differs from HEAD.")
class ChangedFile:
    path: str = strawberry.field(description="Relative to the project root.")
    change: str = strawberry.field(description="git's two-letter status: ` M` modified, ` D` deleted, `A ` added.")


@strawberry.type(description="Whether the workspace differs from its last commit: compare against HEAD knowingly.")
class WorkingTree:
    head: str | None = strawberry.field(description="The commit checked out.")
    dirty: bool = strawberry.field(description="True when a tracked file was modified since HEAD.")
    files: list[ChangedFile] = strawberry.field(description="The tracked files that differ from HEAD.")

    @classmethod
    def from_domain(cls, tree: domain.WorkingTree) -> WorkingTree:
        return cls(
            head=tree.head,
            dirty=bool(tree.files),
            files=[ChangedFile(path=f.path, change=f.change) for f in tree.files],
        )


@strawberry.type(description="The run's results were committed, or there was nothing to commit (`sha` null).")
class RunCommitted:
    sha: str | None = strawberry.field(description="The new commit; null when the run changed nothing git tracks.")
    note: str | None = strawberry.field(description="Why nothing was committed.")


@strawberry.type(description="The tag was created.")
class RevisionTagged:
    tag: GitRef = strawberry.field(description="The new tag.")


_Reading = WorkerUnavailableError | WorkspaceBusyError
RevisionsResult = Annotated[Revisions | NotFoundError | ValidationError | _Reading, strawberry.union("RevisionsResult")]
HistoryResult = Annotated[
    CommitConnection | NotFoundError | ValidationError | _Reading, strawberry.union("HistoryResult")
]
WorkingTreeResult = Annotated[WorkingTree | NotFoundError | _Reading, strawberry.union("WorkingTreeResult")]
CommitRunResult = Annotated[
    RunCommitted | NotFoundError | ConflictError | ForbiddenError | ValidationError | WorkspaceError | _Reading,
    strawberry.union("CommitRunResult"),
]
TagRevisionResult = Annotated[
    RevisionTagged | NotFoundError | ConflictError | ForbiddenError | ValidationError | WorkspaceError | _Reading,
    strawberry.union("TagRevisionResult"),
]
