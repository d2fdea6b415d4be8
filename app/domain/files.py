"""Files in a workspace, as users see them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class FileKind(StrEnum):
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str
    """Relative to the project root, with forward slashes."""
    name: str
    kind: FileKind
    size: int
    modified_at: datetime


@dataclass(frozen=True, slots=True)
class TextFile:
    path: str
    content: str
    size: int
