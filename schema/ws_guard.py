"""Every operation over a WebSocket checks the socket's token again and takes one of the user's operation slots."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from graphql import GraphQLError, ValidationRule
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension

from app.ws_sessions import release_operation_slot, session_of, take_operation_slot


def _refusal(message: str) -> type[ValidationRule]:
    """A validation rule that refuses the operation: Strawberry answers it with an ``error`` message, unexecuted."""

    class Refused(ValidationRule):
        def enter_document(self, *_: Any) -> None:
            self.report_error(GraphQLError(message))

    return Refused


class WebSocketGuard(SchemaExtension):
    def __init__(self, *, max_operations_per_user: int) -> None:
        self.max_operations_per_user = max_operations_per_user

    def _refuse(self, message: str) -> None:
        context = self.execution_context
        context.validation_rules = (*context.validation_rules, _refusal(message))

    async def on_operation(self) -> AsyncIterator[None]:
        request = getattr(self.execution_context.context, "request", None)
        session = session_of(request) if isinstance(request, WebSocket) else None
        if session is None:  # HTTP: the middleware authenticated this request
            yield
            return
        if not await session.still_valid():
            self._refuse("the API token is no longer valid (revoked or expired); the connection is closed")
            yield
            return
        user_id = session.principal.user.id
        if not take_operation_slot(user_id, self.max_operations_per_user):
            self._refuse(
                f"too many open operations: a user holds at most {self.max_operations_per_user} over WebSockets; "
                "complete one first"
            )
            yield
            return
        try:
            yield
        finally:
            release_operation_slot(user_id)
