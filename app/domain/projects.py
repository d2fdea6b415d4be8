"""Projects: one owner's DVC workspace."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from app.domain.users import Member, Role


@dataclass(frozen=True, slots=True)
class ResourceLimits:
    """What one stage command of the project may use; enforced on the worker with setrlimit."""

    cpu_seconds: int = 4 * 3600
    memory_bytes: int = 8 * 1024**3
    open_files: int = 4096
    file_size_bytes: int = 20 * 1024**3
    """The largest file a command may write."""
    log_bytes: int = 20 * 1024**2
    """The most log a stage keeps; past it the log says it was cut."""

    def to_dict(self) -> dict[str, int]:
        return {
            "cpu_seconds": self.cpu_seconds,
            "memory_bytes": self.memory_bytes,
            "open_files": self.open_files,
            "file_size_bytes": self.file_size_bytes,
            "log_bytes": self.log_bytes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, int] | None) -> ResourceLimits:
        defaults = cls()
        data = data or {}
        return cls(**{key: int(data.get(key, value)) for key, value in defaults.to_dict().items()})


# The ranges an owner may set: wide, but never "unlimited".
LIMIT_RANGES: dict[str, tuple[int, int]] = {
    "cpu_seconds": (1, 7 * 24 * 3600),
    "memory_bytes": (64 * 1024**2, 512 * 1024**3),
    "open_files": (64, 65536),
    "file_size_bytes": (1024**2, 10 * 1024**4),
    "log_bytes": (64 * 1024, 1024**3),
}


DEFAULT_REQUIREMENTS_PATH = "requirements.txt"
"""A project's Python requirements file unless its owner set another."""


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
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    requirements_path: str | None = None
    """The project's Python requirements file, relative to the workspace, as its owner set it (None: the default,
    ``requirements.txt``, used when it exists)."""
    network_allowed: bool = False
    """Whether the project's stage commands get a network (user-mode, outside addresses only; never the host's own
    addresses, its loopback or the networks it is attached to, where MongoDB and Redis listen). Off by default."""

    def role_of(self, user_id: str) -> Role | None:
        return next((m.role for m in self.members if m.user_id == user_id), None)
