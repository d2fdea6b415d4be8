"""Rules for names users choose: projects and pipelines become folder names, so they are strict."""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from app.domain.errors import InvalidInput, Issue
from app.domain.pipelines import StageSpec

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(value: str, *, field: str, what: str) -> str:
    if not _NAME.fullmatch(value) or value.endswith("."):
        raise InvalidInput(
            [
                Issue(
                    path=field,
                    message=(
                        f"{what} name {value!r} must be 1-64 characters: letters, digits, '_', '-' or '.', "
                        "starting with a letter or digit and not ending with '.'"
                    ),
                )
            ]
        )
    return value


_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:[\w./~-]+$")


@dataclass(frozen=True, slots=True)
class RepositoryPolicy:
    """Where a project may be cloned from: a clone is the worker reading a URL or path for a user."""

    schemes: frozenset[str] = frozenset({"https"})
    """Remote URL schemes allowed (``ssh`` also allows ``user@host:path``)."""
    local_roots: tuple[Path, ...] = ()
    """Folders under which local paths (``/path`` or ``file://``) may be cloned; none by default."""
    forbidden_roots: tuple[Path, ...] = ()
    """Never cloned from, even under a local root: WORKSPACE_ROOT (other projects) and the service's own install."""


def _repository_issue(field: str, message: str) -> InvalidInput:
    return InvalidInput([Issue(path=field, message=message)])


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _check_local_repository(path: str, field: str, policy: RepositoryPolicy) -> None:
    real = Path(os.path.realpath(path))
    forbidden = [Path(os.path.realpath(r)) for r in policy.forbidden_roots]
    allowed = [Path(os.path.realpath(r)) for r in policy.local_roots]
    if _inside(real, forbidden) or any(root.is_relative_to(real) for root in forbidden):
        raise _repository_issue(field, "this folder belongs to the service (workspaces or its own files)")
    if not _inside(real, allowed):
        raise _repository_issue(
            field, "local paths can be cloned only from folders the operator allows (ALLOWED_LOCAL_REPOSITORY_ROOTS)"
        )


def check_repository_url(value: str, *, field: str, policy: RepositoryPolicy | None = None) -> str:
    """Accept the remote URLs and local folders ``policy`` allows; refuse anything git could read as an option."""
    policy = policy or RepositoryPolicy()
    allowed = ", ".join(f"{s}://" for s in sorted(policy.schemes)) or "no remote URL"
    if _has_control(value) or value.startswith("-") or len(value) > 2048:
        raise _repository_issue(field, "repository must be a URL or path without control characters, at most 2048")
    if value.startswith("/"):
        _check_local_repository(value, field, policy)
        return value
    if _SCP_LIKE.fullmatch(value) is not None:
        if "ssh" not in policy.schemes:
            raise _repository_issue(field, f"user@host:path (ssh) repositories are not enabled; allowed: {allowed}")
        return value
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme == "file":
        _check_local_repository(unquote(parts.path), field, policy)
        return value
    if scheme not in policy.schemes or not parts.hostname:
        raise _repository_issue(
            field, f"repository must be one of: {allowed} with a host, or an allowed absolute local path"
        )
    return value


def redact_repository_url(value: str) -> str:
    """``value`` with the secret part of its credentials shown as ``***``: what is stored and shown.

    ``https://user:secret@host`` keeps the user; ``https://token@host`` (a token as the user name) hides it all; an
    ssh user name (``git@host``) is no secret and stays.
    """
    parts = urlsplit(value)
    if "@" not in parts.netloc or not parts.scheme:
        return value
    userinfo, _, host = parts.netloc.rpartition("@")
    user, has_password, _ = userinfo.partition(":")
    if has_password:
        userinfo = f"{user}:***"
    elif parts.scheme.lower() in {"https", "http"}:
        userinfo = "***"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


# Stored before any worker sees them, so they are bounded here: a 10,000-stage pipeline or a 100,000-character name
# used to reach DVC, time the request out and be stored anyway.
MAX_STAGES_PER_PIPELINE = 500
MAX_STAGE_NAME_LENGTH = 200
MAX_STAGE_PATH_BYTES = 1024
MAX_STAGE_COMMAND_LENGTH = 64 * 1024
# Commands are shell text: line breaks and tabs belong there; NUL and the other control characters do not.
_COMMAND_WHITESPACE = frozenset("\n\r\t")


def _has_control(value: str, allowed: frozenset[str] = frozenset()) -> bool:
    return any(unicodedata.category(c) == "Cc" and c not in allowed for c in value)


def check_stage_specs(stages: Sequence[StageSpec], *, field: str = "stages") -> None:
    """Bounds on what a pipeline write may store: stage count, name and path lengths, no control characters."""
    issues: list[Issue] = []
    if len(stages) > MAX_STAGES_PER_PIPELINE:
        issues.append(Issue(path=field, message=f"a pipeline has at most {MAX_STAGES_PER_PIPELINE} stages"))
        raise InvalidInput(issues)
    for index, stage in enumerate(stages):
        at = f"{field}[{index}]"
        if len(stage.name) > MAX_STAGE_NAME_LENGTH:
            issues.append(
                Issue(path=f"{at}.name", message=f"a stage name is at most {MAX_STAGE_NAME_LENGTH} characters")
            )
        elif _has_control(stage.name):
            issues.append(Issue(path=f"{at}.name", message="a stage name may not contain NUL or control characters"))
        if len(stage.cmd) > MAX_STAGE_COMMAND_LENGTH:
            issues.append(
                Issue(path=f"{at}.cmd", message=f"a command is at most {MAX_STAGE_COMMAND_LENGTH} characters")
            )
        elif _has_control(stage.cmd, _COMMAND_WHITESPACE):
            issues.append(Issue(path=f"{at}.command", message="a command may not contain NUL or control characters"))
        lists = {"deps": stage.deps, "outs": stage.outs, "params": stage.params, "metrics": stage.metrics}
        for key, values in (lists | {"plots": stage.plots, "wdir": [stage.wdir]}).items():
            for position, value in enumerate(values):
                if len(value.encode("utf-8", "surrogatepass")) > MAX_STAGE_PATH_BYTES or _has_control(value):
                    message = f"{value[:40]!r} must be at most {MAX_STAGE_PATH_BYTES} bytes, without control characters"
                    issues.append(
                        Issue(path=f"{at}.{key}" if key == "wdir" else f"{at}.{key}[{position}]", message=message)
                    )
    if issues:
        raise InvalidInput(issues)
