"""Projects: one owner's DVC workspace."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


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
