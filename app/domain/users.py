"""Users, their API tokens, and their roles in projects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A token as stored: only a hash of its secret is kept; the secret is shown once, at creation."""

    id: str
    user_id: str
    name: str
    prefix: str
    """The first characters of the secret, so people can tell their tokens apart."""
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the user, and the token they called with (rate limits count per token)."""

    user: User
    token_id: str


class Role(StrEnum):
    VIEWER = "viewer"
    """Reads and subscribes."""
    EDITOR = "editor"
    """Also changes pipelines and files, and starts and cancels runs."""
    OWNER = "owner"
    """Also deletes the project and manages its members."""

    @property
    def rank(self) -> int:
        return [Role.VIEWER, Role.EDITOR, Role.OWNER].index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


@dataclass(frozen=True, slots=True)
class Member:
    user_id: str
    role: Role
