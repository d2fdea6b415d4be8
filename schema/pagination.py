"""Opaque cursors for Relay-style connections."""

from __future__ import annotations

import base64
import binascii

import strawberry

from app.domain.errors import InvalidInput, Issue

_PREFIX = "cursor:"


def encode_cursor(identifier: str) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{identifier}".encode()).decode()


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        decoded = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    if not decoded.startswith(_PREFIX):
        raise InvalidInput([Issue(path="after", message="not a cursor this API gave out")])
    return decoded.removeprefix(_PREFIX)


@strawberry.type(description="Where a page stands in the whole list.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether another page follows this one.")
    end_cursor: str | None = strawberry.field(description="Pass as `after` to get the next page.")


def page_info(cursors: list[str], *, has_next_page: bool) -> PageInfo:
    """Where a page of edges (given by their cursors) stands."""
    return PageInfo(has_next_page=has_next_page, end_cursor=cursors[-1] if cursors else None)
