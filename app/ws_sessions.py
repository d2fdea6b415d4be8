"""A WebSocket keeps its rights only while its token does; and one user holds a bounded number of operations.

A WebSocket authenticates once, at ``connection_init`` (app.main). Its token is checked again on every new operation
(``subscribe``, schema.ws_guard) and every ``ws_token_check_seconds`` while the socket is open; a revoked or expired
token closes the socket with code 4403. When MongoDB cannot be reached for a check, the last successful check stands
for one more interval (nobody can revoke a token without MongoDB either); after that the socket closes with 4403 too.

Open operations (subscriptions, and queries or mutations sent over the socket) are capped per connection (Strawberry's
``max_subscriptions_per_connection``) and per user in this API process (``ws_max_operations_per_user``); past either
cap the new operation gets an ``error`` message and the socket stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from pymongo.errors import PyMongoError
from starlette.websockets import WebSocket, WebSocketState

from app.domain.errors import Unauthenticated
from app.domain.users import Principal
from app.services.auth import AuthService

logger = logging.getLogger(__name__)

REVOKED_CLOSE_CODE = 4403
# Operations open per user in this process, across all their sockets.
_open_by_user: Counter[str] = Counter()


@dataclass
class WebSocketSession:
    """The token a socket authenticated with, and when it was last found valid."""

    websocket: WebSocket
    auth: AuthService
    secret: str
    principal: Principal
    check_seconds: float
    checked_at: float = field(default_factory=time.monotonic)
    closed: bool = False
    _watch: asyncio.Task[None] | None = None

    def start_watching(self) -> None:
        self._watch = asyncio.create_task(self._watch_token(), name="ws-token-check")

    async def still_valid(self) -> bool:
        """Check the token again; False (and the socket closed with 4403) when it no longer holds."""
        if self.closed:
            return False
        try:
            self.principal = await self.auth.authenticate(self.secret)
        except Unauthenticated as error:
            await self.close(error.message)
            return False
        except PyMongoError as error:
            if time.monotonic() - self.checked_at <= self.check_seconds:
                logger.warning("token check of a WebSocket skipped, MongoDB unavailable: %s", error)
                return True
            await self.close("the API token could not be checked (MongoDB unavailable)")
            return False
        self.checked_at = time.monotonic()
        return True

    async def close(self, reason: str) -> None:
        self.closed = True
        if self.websocket.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(RuntimeError, OSError):
                await self.websocket.close(code=REVOKED_CLOSE_CODE, reason=reason[:120])

    async def _watch_token(self) -> None:
        while not self.closed:
            await asyncio.sleep(self.check_seconds)
            if self.websocket.client_state == WebSocketState.DISCONNECTED or (
                self.websocket.application_state == WebSocketState.DISCONNECTED
            ):
                return
            await self.still_valid()


def session_of(websocket: WebSocket) -> WebSocketSession | None:
    session = getattr(websocket.state, "token_session", None)
    return session if isinstance(session, WebSocketSession) else None


def attach(session: WebSocketSession) -> None:
    session.websocket.state.token_session = session
    session.start_watching()


def take_operation_slot(user_id: str, limit: int) -> bool:
    """Count one more open operation for the user; False (nothing counted) when the user is at ``limit``."""
    if _open_by_user[user_id] >= limit:
        return False
    _open_by_user[user_id] += 1
    return True


def release_operation_slot(user_id: str) -> None:
    _open_by_user[user_id] -= 1
    if _open_by_user[user_id] <= 0:
        del _open_by_user[user_id]
