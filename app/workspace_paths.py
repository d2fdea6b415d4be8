"""Turning a user's relative path into a path inside a workspace, or a typed error."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from app.domain.errors import InvalidInput, Issue

# DVC and git keep their own state here; users change it through the API, never by writing files.
RESERVED_TOP_LEVEL = {".git", ".dvc"}
# Pipelines change through pipeline mutations, so MongoDB and the workspace cannot drift apart.
RESERVED_FILE_NAMES = {"dvc.yaml", "dvc.lock"}


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput([Issue(path=field, message=message)])


def resolve_in_workspace(root: Path, relative: str, *, field: str = "path", allow_root: bool = False) -> Path:
    """The absolute path for ``relative`` inside ``root``; symlinks may not lead outside of it."""
    if "\0" in relative or "\\" in relative:
        raise _invalid(field, "path may not contain NUL or backslash characters")
    pure = PurePosixPath(relative)
    if pure.is_absolute():
        raise _invalid(field, f"{relative!r} is absolute; paths are relative to the project root")
    if ".." in pure.parts:
        raise _invalid(field, f"{relative!r} contains '..'; paths stay inside the workspace")
    parts = [p for p in pure.parts if p != "."]
    if not parts and not allow_root:
        raise _invalid(field, "path is empty")
    if parts and parts[0] in RESERVED_TOP_LEVEL:
        raise _invalid(field, f"{parts[0]}/ belongs to git and DVC and cannot be accessed through the API")
    candidate = root.joinpath(*parts)
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(candidate))
    if real != real_root and not real.is_relative_to(real_root):
        raise _invalid(field, f"{relative!r} leads outside the workspace (through a symbolic link)")
    return candidate


def check_writable_name(path: Path, *, field: str = "path") -> None:
    if path.name in RESERVED_FILE_NAMES:
        raise _invalid(field, f"{path.name} is managed through pipeline mutations (createPipeline, updatePipeline)")


def relative_posix(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()
