"""The ASGI application: GraphQL (HTTP and WebSocket) at /graphql (GraphiQL for browsers), health at /health,
GraphiQL's own assets under /graphiql/."""

from __future__ import annotations

import json
import logging
from typing import Any

from pymongo.errors import ConnectionFailure
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types.unset import UnsetType

from app.auth_middleware import AuthMiddleware
from app.body_limit import BodyLimitMiddleware
from app.domain.errors import Unauthenticated
from app.graphiql import ASSETS_PATH, assets_present, page
from app.graphql_http import GraphQLShapedErrors
from app.health import health
from app.lifespan import build_lifespan
from app.results_route import run_image
from app.services.auth import bearer_secret
from app.settings import InvalidSettings, Settings
from app.state import AppState
from app.ws_sessions import WebSocketSession, attach
from schema.context import Context
from schema.schema import build_schema
from schema.shared_results import IdentityMemo

# The JSON of recent subscription results, by result object: every subscriber of a run gets the same result object
# for the same event (schema.shared_results), so its JSON is encoded once, not once per subscriber.
_encoded_results: IdentityMemo[dict[str, object], str] = IdentityMemo(64)


def _dumps(data: object) -> str:
    return json.dumps(data, separators=(",", ":"))


class GraphQLApp(GraphQLShapedErrors):
    graphiql_page = ""

    @property
    def graphql_ide_html(self) -> str:
        return self.graphiql_page

    def encode_json(self, data: object) -> str:
        if isinstance(data, dict) and data.get("type") == "next":
            payload = data.get("payload")
            if isinstance(payload, dict) and payload.keys() == {"data"} and isinstance(payload["data"], dict):
                encoded = _encoded_results.get(payload["data"], _dumps)
                return f'{{"id":{_dumps(data.get("id"))},"type":"next","payload":{{"data":{encoded}}}}}'
        return _dumps(data)

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        state: AppState = request.state.app
        principal = getattr(request.state, "principal", None)
        return Context(request=request, response=response, state=state, principal=principal)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Authenticate a WebSocket from its ``connection_init`` payload (or its handshake header)."""
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        header = params.get("Authorization") or params.get("authorization") or params.get("authToken")
        if not isinstance(header, str):
            header = context.request.headers.get("authorization")
        secret = bearer_secret(header) if header and " " in header else header
        try:
            context.principal = await context.state.services.auth.authenticate(secret)
            assert secret is not None and isinstance(context.request, WebSocket)
            attach(
                WebSocketSession(
                    websocket=context.request,
                    auth=context.state.services.auth,
                    secret=secret,
                    principal=context.principal,
                    check_seconds=context.state.settings.ws_token_check_seconds,
                )
            )
        except Unauthenticated as error:
            raise ConnectionRejectionError({"message": error.message}) from error
        except ConnectionFailure as error:
            raise ConnectionRejectionError({"message": "the database (MongoDB) is unavailable"}) from error
        return None


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    graphql: Any = GraphQLApp(
        build_schema(settings),
        graphql_ide="graphiql" if settings.graphiql else None,
        multipart_uploads_enabled=True,
        max_subscriptions_per_connection=settings.ws_max_operations_per_connection,
    )
    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/runs/{run_id}/images/{index}", run_image, methods=["GET"]),
        WebSocketRoute("/graphql", graphql),
    ]
    if settings.graphiql:
        local = assets_present(settings.graphiql_assets_dir)
        if not local:
            logging.getLogger(__name__).warning(
                "GraphiQL's assets are not in %s (run 'make tools'): the page loads them from a public CDN",
                settings.graphiql_assets_dir,
            )
        graphql.graphiql_page = page(local_assets=local)
        routes.append(
            Mount(ASSETS_PATH, StaticFiles(directory=settings.graphiql_assets_dir, check_dir=False), name="graphiql")
        )
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(BodyLimitMiddleware, limit=settings.max_request_bytes, upload_limit=settings.max_upload_bytes),
            Middleware(AuthMiddleware),
        ],
        lifespan=build_lifespan(settings),
    )


logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
try:
    app = create_app()
except InvalidSettings as error:
    # One line naming the variable, instead of uvicorn's traceback of a failed import.
    raise SystemExit(f"error: {error.message}") from None
