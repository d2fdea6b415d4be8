"""Files in a workspace: list a folder, read and write small text files, upload data files.

These are plain file operations, not DVC ones, so the API does them itself on the shared
workspace volume (in compose, the API and the workers mount the same one). Every operation goes through folder
descriptors opened without following symbolic links (app.workspace_paths), so a stage that swaps a folder for a link
cannot redirect a write outside its workspace.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISDIR, S_ISLNK, S_ISREG
from typing import BinaryIO, Protocol

from app.domain.errors import InvalidInput, Issue, NotFound, PayloadTooLarge
from app.domain.files import FileEntry, FileKind, TextFile
from app.domain.users import Role
from app.services.access import Access
from app.settings import Settings
from app.workspace_paths import OpenFolder, check_writable_name, open_folder, open_parent, split_relative

UPLOAD_CHUNK_BYTES = 1024 * 1024
HIDDEN_AT_ROOT = {".git"}
MAX_LISTED_ENTRIES = 1000
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class AsyncReadable(Protocol):
    async def read(self, size: int = -1) -> bytes: ...


def _invalid(message: str) -> InvalidInput:
    return InvalidInput([Issue(path="path", message=message)])


def _entry_of(path: str, name: str, stat: os.stat_result) -> FileEntry:
    kind = FileKind.SYMLINK if S_ISLNK(stat.st_mode) else FileKind.DIRECTORY if S_ISDIR(stat.st_mode) else FileKind.FILE
    return FileEntry(
        path=path, name=name, kind=kind, size=stat.st_size, modified_at=datetime.fromtimestamp(stat.st_mtime, UTC)
    )


def _entry(folder: OpenFolder, name: str) -> FileEntry:
    return _entry_of(folder.relative(name), name, os.stat(name, dir_fd=folder.fd, follow_symlinks=False))


def _list(root: Path, path: str) -> list[FileEntry]:
    with open_folder(root, split_relative(path, allow_root=True)) as folder:
        with os.scandir(folder.fd) as scan:
            children = sorted(scan, key=lambda entry: entry.name)
        if not folder.parts:
            children = [c for c in children if c.name not in HIDDEN_AT_ROOT]
        return [
            _entry_of(folder.relative(c.name), c.name, c.stat(follow_symlinks=False))
            for c in children[:MAX_LISTED_ENTRIES]
        ]


def _read_text(root: Path, shown_path: str, limit: int) -> TextFile:
    folder, name = open_parent(root, shown_path)
    with folder:
        try:
            descriptor = os.open(name, _READ_FLAGS, dir_fd=folder.fd)
        except FileNotFoundError as error:
            raise NotFound("file", shown_path) from error
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise _invalid(f"{shown_path!r} is a symbolic link; the API does not follow symbolic links") from error
            raise
    with os.fdopen(descriptor, "rb") as handle:
        stat = os.fstat(handle.fileno())
        if not S_ISREG(stat.st_mode):
            raise NotFound("file", shown_path)
        if stat.st_size > limit:
            raise PayloadTooLarge(limit)
        data = handle.read(limit + 1)
    if len(data) > limit:  # grew since the fstat
        raise PayloadTooLarge(limit)
    try:
        content = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _invalid(f"{shown_path!r} is not UTF-8 text") from error
    return TextFile(path=shown_path, content=content, size=len(data))


def _prepare_target(root: Path, shown_path: str) -> tuple[OpenFolder, str]:
    """The open parent folder of the target (made if missing) and the target's name; the target is no folder."""
    folder, name = open_parent(root, shown_path, create=True)
    try:
        check_writable_name(name)
        with contextlib.suppress(FileNotFoundError):
            if S_ISDIR(os.stat(name, dir_fd=folder.fd, follow_symlinks=False).st_mode):
                raise _invalid(f"{shown_path!r} is a folder")
    except BaseException:
        folder.remove_created()
        folder.close()
        raise
    return folder, name


def _create_temporary(folder: OpenFolder, name: str) -> tuple[int, str]:
    """A new, exclusively created temporary file next to ``name``, opened for writing, never through a link."""
    while True:
        temporary = f".{name[:200]}.{secrets.token_hex(6)}.part"
        with contextlib.suppress(FileExistsError):
            return os.open(temporary, _CREATE_FLAGS, 0o666, dir_fd=folder.fd), temporary


def _commit(folder: OpenFolder, temporary: str, name: str, shown_path: str) -> None:
    try:
        os.replace(temporary, name, src_dir_fd=folder.fd, dst_dir_fd=folder.fd)
    except IsADirectoryError as error:  # a folder appeared at the target meanwhile
        raise _invalid(f"{shown_path!r} is a folder") from error


def _discard(folder: OpenFolder, temporary: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary, dir_fd=folder.fd)
    folder.remove_created()


def _write(root: Path, shown_path: str, data: bytes) -> FileEntry:
    folder, name = _prepare_target(root, shown_path)
    with folder:
        descriptor, temporary = _create_temporary(folder, name)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
            _commit(folder, temporary, name, shown_path)
        except BaseException:
            _discard(folder, temporary)
            raise
        return _entry(folder, name)


@dataclass(frozen=True, slots=True)
class FileService:
    access: Access
    settings: Settings

    async def _root(self, caller: str, project_id: str, needs: Role) -> Path:
        project = await self.access.project(caller=caller, project_id=project_id, needs=needs)
        return self.settings.workspace_root / project.id

    async def list_folder(self, *, caller: str, project_id: str, path: str) -> list[FileEntry]:
        split_relative(path, allow_root=True)
        root = await self._root(caller, project_id, Role.VIEWER)
        return await asyncio.to_thread(_list, root, path)

    async def read_text(self, *, caller: str, project_id: str, path: str) -> TextFile:
        split_relative(path)
        root = await self._root(caller, project_id, Role.VIEWER)
        return await asyncio.to_thread(_read_text, root, path, self.settings.max_text_file_bytes)

    async def write_text(self, *, caller: str, project_id: str, path: str, content: str) -> FileEntry:
        check_writable_name(split_relative(path)[-1])
        data = content.encode("utf-8")
        if len(data) > self.settings.max_text_file_bytes:
            raise PayloadTooLarge(self.settings.max_text_file_bytes)
        root = await self._root(caller, project_id, Role.EDITOR)
        return await asyncio.to_thread(_write, root, path, data)

    async def upload(self, *, caller: str, project_id: str, path: str, source: AsyncReadable) -> FileEntry:
        """Stream ``source`` to disk in chunks; past the size limit nothing is kept."""
        check_writable_name(split_relative(path)[-1])
        root = await self._root(caller, project_id, Role.EDITOR)
        folder, name = await asyncio.to_thread(_prepare_target, root, path)
        with folder:
            descriptor, temporary = await asyncio.to_thread(_create_temporary, folder, name)
            try:
                with os.fdopen(descriptor, "wb") as handle:
                    await _copy_limited(source, handle, self.settings.max_upload_bytes)
                await asyncio.to_thread(_commit, folder, temporary, name, path)
            except BaseException:
                await asyncio.to_thread(_discard, folder, temporary)
                raise
            return await asyncio.to_thread(_entry, folder, name)


async def _copy_limited(source: AsyncReadable, handle: BinaryIO, limit: int) -> None:
    written = 0
    while chunk := await source.read(UPLOAD_CHUNK_BYTES):
        written += len(chunk)
        if written > limit:
            raise PayloadTooLarge(limit)
        await asyncio.to_thread(handle.write, chunk)
