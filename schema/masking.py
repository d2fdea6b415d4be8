"""What a client learns of a failure that is not a typed result: never internals.

GraphQL's own errors (syntax, validation) and domain errors keep their messages. An outage of
MongoDB or Redis says which service is unavailable, so clients know to retry; any other failure
is a bug, logged in full here and reported to the client as "Internal server error.".
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from pymongo.errors import ConnectionFailure
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import StreamExecutionResult

from app.domain.errors import DomainError

logger = logging.getLogger(__name__)

INTERNAL_ERROR = "Internal server error."


def _outage(error: BaseException) -> str | None:
    if isinstance(error, ConnectionFailure):
        return "the database (MongoDB) is unavailable; nothing was changed, try again shortly"
    if isinstance(error, (RedisConnectionError, RedisTimeoutError)):
        return "the job queue (Redis) is unavailable; nothing was changed, try again shortly"
    return None


def should_mask(error: GraphQLError) -> bool:
    original = error.original_error
    if original is None or isinstance(original, (GraphQLError, DomainError)):
        return False
    if _outage(original) is None:
        logger.error("unexpected error at %s", error.path, exc_info=original)
    else:
        logger.warning("service outage at %s: %s", error.path, original)
    return True


class PublicErrors(SchemaExtension):
    """Masks the errors of every result, through Strawberry's documented hooks: ``on_operation`` for a query or
    mutation, ``on_stream_result`` for each result of a subscription.

    Not Strawberry's MaskErrors: it tests each result against a runtime-checkable Protocol, an isinstance that walks
    the protocol's members every time (8% of the API's CPU when a run's updates stream to 200 subscribers, measured
    when this was a MaskErrors with an override of its private ``_process_result``); this reads ``errors`` directly.
    """

    def __init__(self) -> None:
        self._streamed = False

    def on_operation(self) -> Iterator[None]:
        self._streamed = False
        yield
        if not self._streamed:  # a subscription's results were masked one by one as they went out
            _mask(self.execution_context.result)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        self._streamed = True
        _mask(result)
        yield


def _mask(result: object) -> None:
    errors = getattr(result, "errors", None)
    if errors:
        result.errors = [anonymise_error(e) if should_mask(e) else e for e in errors]  # type: ignore[attr-defined]


def anonymise_error(error: GraphQLError) -> GraphQLError:
    outage = _outage(error.original_error) if error.original_error is not None else None
    return GraphQLError(
        message=outage or INTERNAL_ERROR,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions={"code": "SERVICE_UNAVAILABLE" if outage else "INTERNAL_SERVER_ERROR"},
    )
