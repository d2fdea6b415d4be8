"""The typed per-request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from app.state import AppState, Services

# Until authenticated tenants land, the caller names itself with this header (see README).
OWNER_HEADER = "x-user"
DEFAULT_OWNER = "local"


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | WebSocket | None
    state: AppState
    owner: str

    @property
    def services(self) -> Services:
        return self.state.services

    def page_size(self, first: int) -> int:
        return max(1, min(first, self.state.settings.max_page_size))


Info = strawberry.Info[Context, None]


def owner_from(request: Request | WebSocket) -> str:
    return request.headers.get(OWNER_HEADER) or DEFAULT_OWNER
