"""Rules for names users choose: projects and pipelines become folder names, so they are strict."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

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


def check_repository_url(value: str, *, field: str) -> str:
    """Accept the forms git clones from; refuse anything git could read as an option."""
    ok = (
        value.startswith(("https://", "http://", "ssh://", "git://", "file://", "/"))
        or _SCP_LIKE.fullmatch(value) is not None
    )
    if not ok or any(c in value for c in "\n\r\0") or value.startswith("-"):
        raise InvalidInput(
            [
                Issue(
                    path=field,
                    message="repository must be an https://, http://, ssh://, git:// or file:// URL, "
                    "user@host:path, or an absolute local path",
                )
            ]
        )
    return value


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
