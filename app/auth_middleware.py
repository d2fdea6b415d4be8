"""Every HTTP request but /health (and the static GraphiQL page) needs a valid bearer token.

WebSockets authenticate in ``connection_init`` (see app.main), because browsers cannot set
headers on a WebSocket handshake.
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from app.domain.errors import Unauthenticated
from app.services.auth import bearer_secret
from app.state import AppState

OPEN_PATHS = {"/health"}


def _is_graphiql_page(scope: Scope, headers: Headers) -> bool:
    return (
        scope["method"] == "GET"
        and "query" not in QueryParams(scope.get("query_string", b""))
        and "text/html" in headers.get("accept", "")
    )


class AuthMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        state: AppState = scope["state"]["app"]
        headers = Headers(scope=scope)
        if state.settings.graphiql and _is_graphiql_page(scope, headers):
            # The page is static and holds no data; engineers paste their token into its headers tab.
            await self.app(scope, receive, send)
            return
        try:
            principal = await state.services.auth.authenticate(bearer_secret(headers.get("authorization")))
        except Unauthenticated as error:
            await _unauthorized(send, error.message)
            return
        scope["state"]["principal"] = principal
        await self.app(scope, receive, send)


async def _unauthorized(send: Send, message: str) -> None:
    body = json.dumps({"errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"www-authenticate", b'Bearer realm="dvc-pipelines"'),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
