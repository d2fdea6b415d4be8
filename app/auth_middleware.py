"""Every HTTP request but /health (and the static GraphiQL page and its assets) needs a valid bearer token.

WebSockets authenticate in ``connection_init`` (see app.main), because browsers cannot set
headers on a WebSocket handshake.
"""

from __future__ import annotations

import json

from pymongo.errors import ConnectionFailure
from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from app.domain.errors import Unauthenticated
from app.services.auth import bearer_secret
from app.state import AppState

OPEN_PATHS = {"/health"}
OPEN_PREFIXES = ("/graphiql/",)
"""GraphiQL's static assets (app.graphiql): public npm packages, no data."""


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
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or scope["path"].startswith(OPEN_PREFIXES):
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
            await _answer(send, 401, error.message, "UNAUTHENTICATED")
            return
        except ConnectionFailure:
            # Tokens live in MongoDB: without it nobody can be authenticated, and the client should retry.
            await _answer(send, 503, "the database (MongoDB) is unavailable; try again shortly", "SERVICE_UNAVAILABLE")
            return
        scope["state"]["principal"] = principal
        await self.app(scope, receive, send)


async def _answer(send: Send, status: int, message: str, code: str) -> None:
    body = json.dumps({"errors": [{"message": message, "extensions": {"code": code}}]}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="dvc-pipelines"'))
    elif status == 503:
        headers.append((b"retry-after", b"5"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
