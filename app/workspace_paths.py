"""Turning a user's relative path into an open folder inside a workspace, or a typed error.

Checking a path and opening it later lets a stage swap a folder for a symbolic link in between (a stage command is
untrusted code that runs in the same workspace). So nothing here resolves a path by name: every component is opened
relative to the folder before it with ``O_NOFOLLOW``, and every file operation goes through the last folder's
descriptor (``dir_fd``). A symbolic link at any component is refused, whatever it points to; the resolved path is then
the path as written, so reserved names are checked on exactly what gets opened.
"""

from __future__ import annotations

import contextlib
import errno
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import TracebackType

from app.domain.errors import InvalidInput, Issue, NotFound

# DVC and git keep their own state here; users change it through the API, never by writing files.
RESERVED_TOP_LEVEL = {".git", ".dvc"}
# Pipelines change through pipeline mutations, so MongoDB and the workspace cannot drift apart.
RESERVED_FILE_NAMES = {"dvc.yaml", "dvc.lock"}
# Deep or long paths cost DVC dearly (it walks the tree recursively) and no project needs them.
MAX_PATH_BYTES = 1024
MAX_PATH_DEPTH = 32
MAX_NAME_BYTES = 255

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput([Issue(path=field, message=message)])


def has_control_characters(value: str) -> bool:
    """NUL, newlines, escapes and the other Unicode control characters (category Cc)."""
    return any(unicodedata.category(c) == "Cc" for c in value)


def split_relative(relative: str, *, field: str = "path", allow_root: bool = False) -> list[str]:
    """The components of ``relative`` (a POSIX path inside a workspace), checked; '.' components are dropped."""
    if has_control_characters(relative) or "\\" in relative:
        raise _invalid(field, "path may not contain NUL, control or backslash characters")
    if len(relative.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise _invalid(field, f"path is longer than {MAX_PATH_BYTES} bytes")
    pure = PurePosixPath(relative)
    if pure.is_absolute():
        raise _invalid(field, f"{relative!r} is absolute; paths are relative to the project root")
    if ".." in pure.parts:
        raise _invalid(field, f"{relative!r} contains '..'; paths stay inside the workspace")
    parts = [p for p in pure.parts if p != "."]
    if not parts and not allow_root:
        raise _invalid(field, "path is empty")
    if len(parts) > MAX_PATH_DEPTH:
        raise _invalid(field, f"path is deeper than {MAX_PATH_DEPTH} folders")
    long_name = next((p for p in parts if len(p.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES), None)
    if long_name is not None:
        raise _invalid(field, f"a file or folder name is longer than {MAX_NAME_BYTES} bytes ({long_name[:40]!r}...)")
    if parts and parts[0] in RESERVED_TOP_LEVEL:
        raise _invalid(field, f"{parts[0]}/ belongs to git and DVC and cannot be accessed through the API")
    return parts


def check_writable_name(name: str, *, field: str = "path") -> None:
    if name in RESERVED_FILE_NAMES:
        raise _invalid(field, f"{name} is managed through pipeline mutations (createPipeline, updatePipeline)")


def _component_error(error: OSError, shown: str, field: str) -> InvalidInput | NotFound | None:
    if error.errno == errno.ELOOP:
        return _invalid(field, f"{shown!r} is a symbolic link; the API does not follow symbolic links")
    if error.errno == errno.ENOTDIR:
        return _invalid(field, f"{shown!r} is a file, not a folder")
    if error.errno == errno.ENAMETOOLONG:
        return _invalid(field, f"{shown!r} is too long a name for the file system")
    return None


@dataclass
class OpenFolder:
    """A folder inside a workspace, held open by descriptor; ``created`` lists the folders this walk made.

    Use as a context manager: the descriptors close on exit. ``remove_created`` takes the made folders away again
    (for a failed write), innermost first, each through its parent's descriptor.
    """

    fd: int
    parts: list[str]
    _chain: list[int] = field(default_factory=list)
    created: list[tuple[int, str]] = field(default_factory=list)

    def __enter__(self) -> OpenFolder:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        for descriptor in reversed(self._chain):
            with contextlib.suppress(OSError):
                os.close(descriptor)
        self._chain.clear()

    def remove_created(self) -> None:
        for parent_fd, name in reversed(self.created):
            with contextlib.suppress(OSError):
                os.rmdir(name, dir_fd=parent_fd)

    def relative(self, name: str | None = None) -> str:
        return "/".join([*self.parts, name] if name is not None else self.parts)


def open_folder(root: Path, parts: list[str], *, create: bool = False, field: str = "path") -> OpenFolder:
    """Open ``root/parts...`` one component at a time, never following a symbolic link.

    With ``create``, missing folders are made (``mkdir`` relative to their parent's descriptor). A folder that
    appears, vanishes or turns into a link while we walk answers the same typed errors as one that was always so.
    """
    try:
        root_fd = os.open(root, _DIRECTORY_FLAGS)
    except FileNotFoundError as error:
        raise NotFound("folder", ".") from error
    folder = OpenFolder(fd=root_fd, parts=list(parts), _chain=[root_fd])
    try:
        for index, name in enumerate(parts):
            shown = "/".join(parts[: index + 1])
            parent = folder.fd
            try:
                child = os.open(name, _DIRECTORY_FLAGS, dir_fd=parent)
            except FileNotFoundError:
                if not create:
                    raise NotFound("folder", shown) from None
                try:
                    os.mkdir(name, 0o777, dir_fd=parent)
                    folder.created.append((parent, name))
                except FileExistsError:
                    pass  # made meanwhile by someone else: open what is there now, still without following links
                try:
                    child = os.open(name, _DIRECTORY_FLAGS, dir_fd=parent)
                except OSError as error:
                    typed = _component_error(error, shown, field)
                    if typed is None and isinstance(error, FileNotFoundError):
                        typed = _invalid(field, f"{shown!r} was removed while the path was being opened")
                    if typed is None:
                        raise
                    raise typed from error
            except OSError as error:
                typed = _component_error(error, shown, field)
                if typed is None:
                    raise
                raise typed from error
            folder._chain.append(child)
            folder.fd = child
    except BaseException:
        folder.remove_created()
        folder.close()
        raise
    return folder


def open_parent(root: Path, relative: str, *, create: bool = False, field: str = "path") -> tuple[OpenFolder, str]:
    """The open folder that holds ``relative``'s last component, and that component's name."""
    parts = split_relative(relative, field=field)
    return open_folder(root, parts[:-1], create=create, field=field), parts[-1]
