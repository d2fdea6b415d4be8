"""The typed per-request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from app.domain.errors import Unauthenticated
from app.domain.users import Principal
from app.state import AppState, Services
from schema.loaders import Loaders


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | WebSocket | None
    state: AppState
    principal: Principal | None
    connection_params: dict[str, object] = field(default_factory=dict)
    """What a WebSocket client sent in ``connection_init``; Strawberry fills it in."""

    @property
    def services(self) -> Services:
        return self.state.services

    @cached_property
    def loaders(self) -> Loaders:
        """This request's DataLoaders (schema.loaders). A WebSocket's context lasts as long as its connection:
        there they batch but keep nothing."""
        return Loaders(self.services, self.caller, cache=not isinstance(self.request, WebSocket))

    @property
    def caller(self) -> str:
        """The calling user's id. The HTTP middleware and the WebSocket handshake guarantee one."""
        if self.principal is None:
            raise Unauthenticated("an API token is required")
        return self.principal.user.id

    async def spend_work(self) -> None:
        """Count a request that starts work against the caller (rate limit per user, whatever token they use)."""
        if self.principal is None:
            raise Unauthenticated("an API token is required")
        await self.services.rate_limit.spend(self.principal.user.id)

    def page_size(self, first: int) -> int:
        return max(1, min(first, self.state.settings.max_page_size))


Info = strawberry.Info[Context, None]
