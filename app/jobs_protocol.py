"""How jobs report expected failures back to the API: plain dicts, turned back into domain errors.

arq transports results with pickle; keeping payloads to builtins means the API and a worker of a
slightly different build still understand each other.
"""

from __future__ import annotations

from typing import Any

from app.domain.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    Issue,
    NotFound,
    TemplatedPipeline,
    WorkspaceBusy,
    WorkspaceError,
)

JobPayload = dict[str, Any]


def ok(**values: Any) -> JobPayload:
    return {"ok": True, **values}


def failure(error: DomainError) -> JobPayload:
    payload: dict[str, Any] = {"kind": type(error).__name__, "message": error.message}
    if isinstance(error, NotFound):
        payload |= {"resource": error.resource, "identifier": error.identifier}
    if isinstance(error, InvalidInput):
        payload["issues"] = [i.to_dict() for i in error.issues]
    if isinstance(error, TemplatedPipeline):
        payload |= {"path": error.path, "constructs": list(error.constructs)}
    return {"ok": False, "error": payload}


def raise_for_failure(payload: JobPayload) -> JobPayload:
    """Return a successful payload; raise the domain error a failed one describes."""
    if payload.get("ok"):
        return payload
    error = payload["error"]
    kind, message = error["kind"], error["message"]
    if kind == "NotFound":
        raise NotFound(error["resource"], error["identifier"])
    if kind == "InvalidInput":
        raise InvalidInput([Issue.from_dict(i) for i in error["issues"]], message)
    if kind == "Conflict":
        raise Conflict(message)
    if kind == "TemplatedPipeline":
        raise TemplatedPipeline(error["path"], list(error["constructs"]))
    if kind == "WorkspaceBusy":
        raise WorkspaceBusy(message)
    raise WorkspaceError(message)
