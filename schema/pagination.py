"""Relay-style connections: one generic page type and its opaque cursors."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Generic, Self, TypeVar

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


NodeT = TypeVar("NodeT")


# Strawberry names a specialisation after its node type: Edge[Run] is `RunEdge`.
@strawberry.type(description="One item of a page, with its position in the list.")
class Edge(Generic[NodeT]):
    cursor: str = strawberry.field(description="The item's position: pass it as `after` to get the items after it.")
    node: NodeT = strawberry.field(description="The item.")


@strawberry.type(description="A page of a list.")
class Connection(Generic[NodeT]):
    """Subclassed once per node type (`class RunConnection(Connection[Run])`) to give the page its own description."""

    edges: list[Edge[NodeT]] = strawberry.field(description="The items on this page, in the list's order.")
    page_info: PageInfo = strawberry.field(description="Where this page stands.")

    @classmethod
    def of(cls, nodes: Iterable[tuple[str, NodeT]], *, has_next_page: bool) -> Self:
        """The page of these (cursor, node) pairs."""
        edges = [Edge(cursor=cursor, node=node) for cursor, node in nodes]
        end_cursor = edges[-1].cursor if edges else None
        return cls(edges=edges, page_info=PageInfo(has_next_page=has_next_page, end_cursor=end_cursor))
