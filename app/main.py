"""The ASGI application: GraphQL (HTTP and WebSocket) at /graphql, health at /health."""

from __future__ import annotations

import logging
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from app.body_limit import BodyLimitMiddleware
from app.health import health
from app.lifespan import build_lifespan
from app.settings import Settings
from schema.context import Context, owner_from
from schema.schema import schema


class GraphQLApp(GraphQL[Context, None]):
    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        return Context(request=request, response=response, state=request.state.app, owner=owner_from(request))


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    graphql: Any = GraphQLApp(
        schema,
        graphql_ide="graphiql" if settings.graphiql else None,
        multipart_uploads_enabled=True,
    )
    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
        ],
        middleware=[
            Middleware(
                BodyLimitMiddleware,
                limit=settings.max_request_bytes,
                upload_limit=settings.max_upload_bytes,
            )
        ],
        lifespan=build_lifespan(settings),
    )


logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
app = create_app()
