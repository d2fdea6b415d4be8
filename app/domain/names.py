"""Rules for names users choose: projects and pipelines become folder names, so they are strict."""

from __future__ import annotations

import re

from app.domain.errors import InvalidInput, Issue

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
