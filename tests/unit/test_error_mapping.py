"""Pure logic: every domain error becomes its GraphQL union member, with the member's fields taken from it."""

from __future__ import annotations

from typing import Any

import pytest
from strawberry.schema.exception_handlers import get_error_type, get_exception_types

from app.domain import errors as domain
from schema import errors as graphql

# Errors that never reach a resolver's union: the request is refused before GraphQL runs.
_NOT_UNION_MEMBERS = {domain.Unauthenticated}

EXAMPLES: list[tuple[domain.DomainError, type[graphql.Error], dict[str, Any]]] = [
    (domain.NotFound("pipeline", "p1"), graphql.NotFoundError, {"resource": "pipeline", "identifier": "p1"}),
    (domain.Conflict("name taken"), graphql.ConflictError, {}),
    (domain.Forbidden("viewers may not run"), graphql.ForbiddenError, {}),
    (domain.RateLimited(7), graphql.RateLimitedError, {"retry_after_seconds": 7}),
    (domain.WorkerUnavailable("no worker"), graphql.WorkerUnavailableError, {}),
    (domain.WorkspaceBusy("locked"), graphql.WorkspaceBusyError, {}),
    (domain.PayloadTooLarge(1024), graphql.PayloadTooLargeError, {"limit_bytes": 1024}),
    (domain.WorkspaceError("clone failed"), graphql.WorkspaceError, {}),
    (
        domain.TemplatedPipeline("dvc.yaml", ["vars at line 1"]),
        graphql.TemplatedPipelineError,
        {"path": "dvc.yaml", "constructs": ["vars at line 1"]},
    ),
]


def _handler_for(exception: Exception) -> Any:
    """The handler Strawberry would pick, read the way Strawberry reads a handler's declared types."""
    matching = [h for h in graphql.EXCEPTION_HANDLERS if isinstance(exception, get_exception_types(h))]
    assert len(matching) == 1, f"{type(exception).__name__} is handled by {len(matching)} handlers"
    return matching[0]


@pytest.mark.parametrize(("exception", "member", "fields"), EXAMPLES, ids=lambda e: type(e).__name__)
def test_a_domain_error_becomes_its_member_with_its_message_and_fields(
    exception: domain.DomainError, member: type[graphql.Error], fields: dict[str, Any]
) -> None:
    handler = _handler_for(exception)
    result = handler.handle(exception, field=None, info=None)
    assert type(result) is member is get_error_type(handler)
    assert result.message == exception.message
    for name, value in fields.items():
        assert getattr(result, name) == value


def test_invalid_input_names_the_fields_the_client_sent() -> None:
    exception = domain.InvalidInput([domain.Issue(path="stages[0].always_changed", message="not a boolean")])
    result = _handler_for(exception).handle(exception, field=None, info=None)
    assert isinstance(result, graphql.ValidationError)
    assert [(i.path, i.message) for i in result.issues] == [("stages[0].alwaysChanged", "not a boolean")]
    assert result.message == "stages[0].alwaysChanged: not a boolean"


def test_every_domain_error_has_exactly_one_handler() -> None:
    mapped = set(graphql.DOMAIN_ERRORS) | {domain.InvalidInput}
    assert set(domain.DomainError.__subclasses__()) - _NOT_UNION_MEMBERS == mapped
    assert {type(e) for e, _, _ in EXAMPLES} == set(graphql.DOMAIN_ERRORS)
