"""Projects: one owner's DVC workspace."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from app.domain.users import Member, Role


class ProjectState(StrEnum):
    INITIALIZING = "initializing"
    """The workspace is being created or cloned."""
    READY = "ready"


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    owner: str
    name: str
    description: str | None
    repository_url: str | None
    state: ProjectState
    created_at: datetime
    members: list[Member] = field(default_factory=list)

    def role_of(self, user_id: str) -> Role | None:
        return next((m.role for m in self.members if m.user_id == user_id), None)
