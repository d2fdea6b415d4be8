"""Strawberry's HTTP view, with every refusal of a malformed request answered as a GraphQL error body.

Strawberry answers a request it cannot parse with a text/plain body, and a multipart upload whose ``operations`` or
``map`` part is JSON but not an object with an internal error (HTTP 500). Here both are HTTP 400 (or Strawberry's own
status) with ``{"errors": [{"message": ..., "extensions": {"code": ...}}]}``, like every other error of the API.
"""

from __future__ import annotations

# Strawberry raises and catches cross_web's HTTPException (its HTTP layer since 0.3xx); the same class is caught here.
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData

from schema.context import Context

_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 415: "UNSUPPORTED_MEDIA_TYPE"}


def error_response(status: int, message: str) -> JSONResponse:
    code = _CODES.get(status, "BAD_REQUEST")
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status_code=status)


class GraphQLShapedErrors(GraphQL[Context, None]):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except HTTPException as error:
            response = error_response(error.status_code, error.reason)
        await response(scope, receive, send)

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData | list[GraphQLRequestData]:
        try:
            return await super().parse_http_body(request)
        except (TypeError, AttributeError, IndexError) as error:  # JSON, but not the objects the spec wants
            message = "a multipart request's 'operations' and 'map' must be JSON objects (GraphQL multipart spec)"
            raise HTTPException(400, message) from error
