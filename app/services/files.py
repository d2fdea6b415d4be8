"""Files in a workspace: list a folder, read and write small text files, upload data files.

These are plain file operations, not DVC ones, so the API does them itself on the shared
workspace volume (in compose, the API and the workers mount the same one).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from app.domain.errors import InvalidInput, Issue, NotFound, PayloadTooLarge
from app.domain.files import FileEntry, FileKind, TextFile
from app.domain.users import Role
from app.services.access import Access
from app.settings import Settings
from app.workspace_paths import check_writable_name, relative_posix, resolve_in_workspace

UPLOAD_CHUNK_BYTES = 1024 * 1024
HIDDEN_AT_ROOT = {".git"}
MAX_LISTED_ENTRIES = 1000


class AsyncReadable(Protocol):
    async def read(self, size: int = -1) -> bytes: ...


def _entry(root: Path, path: Path) -> FileEntry:
    stat = path.lstat()
    kind = FileKind.SYMLINK if path.is_symlink() else FileKind.DIRECTORY if path.is_dir() else FileKind.FILE
    return FileEntry(
        path=relative_posix(root, path),
        name=path.name,
        kind=kind,
        size=stat.st_size,
        modified_at=datetime.fromtimestamp(stat.st_mtime, UTC),
    )


def _list(root: Path, folder: Path, shown_path: str) -> list[FileEntry]:
    if not folder.exists():
        raise NotFound("folder", shown_path)
    if not folder.is_dir():
        raise InvalidInput([Issue(path="path", message=f"{shown_path!r} is a file, not a folder")])
    children = sorted(folder.iterdir(), key=lambda p: p.name)
    if folder == root:
        children = [c for c in children if c.name not in HIDDEN_AT_ROOT]
    return [_entry(root, child) for child in children[:MAX_LISTED_ENTRIES]]


def _read_text(path: Path, shown_path: str, limit: int) -> TextFile:
    if not path.is_file():
        raise NotFound("file", shown_path)
    size = path.stat().st_size
    if size > limit:
        raise PayloadTooLarge(limit)
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput([Issue(path="path", message=f"{shown_path!r} is not UTF-8 text")]) from error
    return TextFile(path=shown_path, content=content, size=size)


def _prepare_target(path: Path, shown_path: str) -> list[Path]:
    """Create the missing parent folders and return them, so a failed write can take them away again."""
    if path.is_dir():
        raise InvalidInput([Issue(path="path", message=f"{shown_path!r} is a folder")])
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        message = f"{blocking.name!r} on the way to {shown_path!r} is a file, not a folder"
        raise InvalidInput([Issue(path="path", message=message)])
    missing = [p for p in reversed(path.parents) if not p.exists()]
    for folder in missing:
        folder.mkdir()
    return missing


def _remove_folders(created: list[Path]) -> None:
    for folder in reversed(created):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _atomic_write(path: Path, data: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@dataclass(frozen=True, slots=True)
class FileService:
    access: Access
    settings: Settings

    async def _root(self, caller: str, project_id: str, needs: Role) -> Path:
        project = await self.access.project(caller=caller, project_id=project_id, needs=needs)
        return self.settings.workspace_root / project.id

    async def list_folder(self, *, caller: str, project_id: str, path: str) -> list[FileEntry]:
        root = await self._root(caller, project_id, Role.VIEWER)
        folder = resolve_in_workspace(root, path, allow_root=True)
        return await asyncio.to_thread(_list, root, folder, path)

    async def read_text(self, *, caller: str, project_id: str, path: str) -> TextFile:
        root = await self._root(caller, project_id, Role.VIEWER)
        target = resolve_in_workspace(root, path)
        return await asyncio.to_thread(_read_text, target, path, self.settings.max_text_file_bytes)

    async def write_text(self, *, caller: str, project_id: str, path: str, content: str) -> FileEntry:
        data = content.encode("utf-8")
        if len(data) > self.settings.max_text_file_bytes:
            raise PayloadTooLarge(self.settings.max_text_file_bytes)
        root = await self._root(caller, project_id, Role.EDITOR)
        target = resolve_in_workspace(root, path)
        check_writable_name(target)
        created = await asyncio.to_thread(_prepare_target, target, path)
        try:
            await asyncio.to_thread(_atomic_write, target, data)
        except BaseException:
            await asyncio.to_thread(_remove_folders, created)
            raise
        return await asyncio.to_thread(_entry, root, target)

    async def upload(self, *, caller: str, project_id: str, path: str, source: AsyncReadable) -> FileEntry:
        """Stream ``source`` to disk in chunks; past the size limit nothing is kept."""
        root = await self._root(caller, project_id, Role.EDITOR)
        target = resolve_in_workspace(root, path)
        check_writable_name(target)
        created = await asyncio.to_thread(_prepare_target, target, path)
        limit = self.settings.max_upload_bytes
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                await _copy_limited(source, handle, limit)
            await asyncio.to_thread(os.replace, temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            await asyncio.to_thread(_remove_folders, created)
            raise
        return await asyncio.to_thread(_entry, root, target)


async def _copy_limited(source: AsyncReadable, handle: BinaryIO, limit: int) -> None:
    written = 0
    while chunk := await source.read(UPLOAD_CHUNK_BYTES):
        written += len(chunk)
        if written > limit:
            raise PayloadTooLarge(limit)
        await asyncio.to_thread(handle.write, chunk)
