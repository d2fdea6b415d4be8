"""Refuse oversized and malformed request bodies before anything parses them.

A JSON body must be UTF-8 and a JSON object (a GraphQL request); anything else answers 400 with a GraphQL-shaped
error body, where Strawberry would answer 500 text/plain.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """413 for bodies above the limit: multipart uploads get ``upload_limit``, everything else ``limit``."""

    def __init__(self, app: ASGIApp, *, limit: int, upload_limit: int) -> None:
        self.app = app
        self.limit = limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        is_upload = headers.get(b"content-type", b"").startswith(b"multipart/form-data")
        # Multipart framing adds a little to the file itself.
        limit = self.upload_limit + 64 * 1024 if is_upload else self.limit
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _reject(send, limit)
            return

        received = 0
        response_started = False
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if scope.get("method") == "POST" and content_type == b"application/json":
            body = bytearray()
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away
                body += message.get("body", b"")
                if len(body) > limit:
                    await _reject(send, limit)
                    return
                more = message.get("more_body", False)
            problem = malformed_json_request(bytes(body))
            if problem is not None:
                await _answer(send, 400, problem, "BAD_REQUEST")
                return
            receive = _replay(bytes(body), receive)

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await _reject(send, limit)


_JSON_KINDS = {str: "string", list: "array", int: "number", float: "number", bool: "boolean", type(None): "null"}


def malformed_json_request(body: bytes) -> str | None:
    """Why ``body`` is no GraphQL request over JSON, or None when it is a UTF-8 JSON object."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "the request body is not valid UTF-8"
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        return f"the request body is not valid JSON ({error.msg} at position {error.pos})"
    if not isinstance(document, dict):
        kind = _JSON_KINDS.get(type(document), type(document).__name__)
        return f"the request body must be a JSON object with a 'query', not a JSON {kind}"
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the application the already-read body once, then waits on the client as before."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _reject(send: Send, limit: int) -> None:
    await _answer(send, 413, f"request body exceeds the limit of {limit} bytes", "PAYLOAD_TOO_LARGE")


async def _answer(send: Send, status: int, message: str, code: str) -> None:
    body = json.dumps({"errors": [{"message": message, "extensions": {"code": code}}]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
