"""A project's requirements file, read safely from its workspace and checked before uv sees it.

The file is user input and uv runs outside the sandbox, as the worker: only plain requirements from the package
index are accepted (``name[extras] specifier ; marker``, with optional ``--hash`` options). Options that make uv
read other files or other indexes (``-r``, ``-c``, ``-e``, ``--index-url``, ``-f``) and requirements naming a local
path are refused, so the bytes hashed are all that decides what the environment holds, and nothing outside the
workspace is read. Source distributions are refused when installing (``--only-binary :all:``, see store.py): a build
would run the package's code outside the sandbox.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from app.domain.errors import InvalidInput, NotFound
from app.workspace_paths import open_parent

REQUIREMENTS_FILE = "requirements.txt"
MAX_REQUIREMENTS_BYTES = 256 * 1024
ALLOWED_URL_SCHEMES = ("https://",)


class RequirementsRefused(Exception):
    """The requirements file cannot be used; ``message`` says why (shown in the environment step's log)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Requirements:
    source: str
    """Where the file is, relative to the workspace."""
    content: bytes
    """The file's bytes as read once: what is hashed is what is installed."""


def read_requirements(workspace: Path, relative: str = REQUIREMENTS_FILE) -> Requirements | None:
    """The workspace's requirements file at ``relative``, or None when there is none. Raises RequirementsRefused
    when it is not a regular file of the workspace (a symbolic link at any component is refused, not followed: the
    path is opened one folder at a time, app.workspace_paths), is too large, or is not plain requirements.
    Blocking: call through ``asyncio.to_thread``."""
    try:
        folder, name = open_parent(workspace, relative, field="requirementsPath")
    except InvalidInput as refused:
        raise RequirementsRefused(refused.issues[0].message) from None
    except NotFound:
        return None
    try:
        with folder:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder.fd)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise RequirementsRefused(f"{relative} is a symbolic link; it must be a file of the workspace") from None
        raise RequirementsRefused(f"{relative} cannot be read: {error.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise RequirementsRefused(f"{relative} is not a regular file")
    with os.fdopen(fd, "rb") as file:
        content = file.read(MAX_REQUIREMENTS_BYTES + 1)
    if len(content) > MAX_REQUIREMENTS_BYTES:
        raise RequirementsRefused(f"{relative} is larger than {MAX_REQUIREMENTS_BYTES} bytes")
    check_requirements(content, source=relative)
    return Requirements(source=relative, content=content)


def check_requirements(content: bytes, *, source: str = REQUIREMENTS_FILE) -> None:
    """Raise RequirementsRefused, naming the line, unless every line is a plain requirement, a comment or blank."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise RequirementsRefused(f"{source} is not UTF-8 text") from None
    for number, line in _logical_lines(text):
        problem = _line_problem(line)
        if problem is not None:
            raise RequirementsRefused(f"{source}, line {number}: {problem}: {line[:200]!r}")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first physical line number, line) with comments removed and backslash continuations joined, as pip reads
    a requirements file."""
    lines: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, physical in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if physical.endswith("\\"):
            pending += physical[:-1]
            continue
        line = pending + physical
        pending = ""
        if line.lstrip().startswith("#"):
            continue
        line = line.split(" #", 1)[0].split("\t#", 1)[0].strip()
        if line:
            lines.append((start, line))
    if pending.strip():
        lines.append((start, pending.strip()))
    return lines


def _line_problem(line: str) -> str | None:
    if any(ord(char) < 32 for char in line):
        return "control characters are not allowed"
    if line.startswith("-"):
        return "options are not allowed (only requirements from the package index)"
    requirement_text, *options = line.split(" --")
    for option in options:
        if not option.startswith("hash=") and not option.startswith("hash "):
            return f"option --{option.split('=', 1)[0].split()[0]} is not allowed"
    try:
        requirement = Requirement(requirement_text)
    except InvalidRequirement as error:
        return f"not a requirement ({error})"
    if requirement.url is not None and not requirement.url.startswith(ALLOWED_URL_SCHEMES):
        return "only https URLs may be named"
    return None
