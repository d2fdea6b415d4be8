"""A workspace's git history as the service shows it: commits, branches and tags, and files changed since HEAD."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Commit:
    sha: str
    author_name: str
    author_email: str
    authored_at: datetime
    subject: str
    body: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "sha": self.sha,
            "author_name": self.author_name,
            "author_email": self.author_email,
            "authored_at": self.authored_at,
            "subject": self.subject,
            "body": self.body,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Commit:
        return cls(**{k: data[k] for k in ("sha", "author_name", "author_email", "authored_at", "subject", "body")})


@dataclass(frozen=True, slots=True)
class Ref:
    """A branch or a tag; ``message`` is an annotated tag's subject."""

    name: str
    sha: str
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sha": self.sha, "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ref:
        return cls(name=data["name"], sha=data["sha"], message=data.get("message"))


@dataclass(frozen=True, slots=True)
class ChangedFile:
    path: str
    change: str
    """git's two-letter status (``" M"`` modified, ``" D"`` deleted, ``"A "`` added...)."""


@dataclass(frozen=True, slots=True)
class CommitPage:
    commits: list[Commit]
    has_next_page: bool


@dataclass(frozen=True, slots=True)
class Revisions:
    current_branch: str | None
    branches: list[Ref]
    tags: list[Ref]
    commits: CommitPage


@dataclass(frozen=True, slots=True)
class WorkingTree:
    head: str | None
    files: list[ChangedFile]
    """Tracked files that differ from HEAD."""


@dataclass(frozen=True, slots=True)
class CommitOutcome:
    sha: str | None
    note: str | None
