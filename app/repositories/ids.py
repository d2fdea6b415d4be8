"""Conversions between public string ids and MongoDB ObjectIds."""

from __future__ import annotations

from bson import ObjectId
from bson.errors import InvalidId

from app.domain.errors import NotFound


def parse_object_id(value: str, *, resource: str) -> ObjectId:
    """An unknown and a malformed id are the same to a client: not found."""
    try:
        return ObjectId(value)
    except (InvalidId, TypeError) as error:
        raise NotFound(resource, value) from error


def after_filter(after: str | None, *, resource: str) -> dict[str, object]:
    return {} if after is None else {"_id": {"$gt": parse_object_id(after, resource=resource)}}
