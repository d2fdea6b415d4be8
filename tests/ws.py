"""A real graphql-transport-ws client (the protocol GraphiQL speaks) for subscription tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import websockets


async def subscribe(
    base_url: str, query: str, variables: dict[str, Any], *, token: str
) -> AsyncIterator[dict[str, Any]]:
    """Yield each ``next`` payload's data; return on ``complete``; raise on ``error``."""
    url = base_url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]) as socket:
        # Browsers cannot set headers on a WebSocket: the token travels in connection_init, as GraphiQL sends it.
        await socket.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
        ack = json.loads(await socket.recv())
        assert ack["type"] == "connection_ack", ack
        operation = uuid.uuid4().hex
        payload = {"query": query, "variables": variables}
        await socket.send(json.dumps({"id": operation, "type": "subscribe", "payload": payload}))
        while True:
            message = json.loads(await socket.recv())
            if message["type"] == "ping":
                await socket.send(json.dumps({"type": "pong"}))
            elif message["type"] == "next":
                assert not message["payload"].get("errors"), message["payload"]["errors"]
                yield message["payload"]["data"]
            elif message["type"] == "complete":
                return
            elif message["type"] == "error":
                raise AssertionError(f"subscription error: {message['payload']}")
