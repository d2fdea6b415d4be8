"""A graphql-transport-ws client: subscribe, then read each payload with the moment it arrived."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from bench.credentials import Credentials


class SubscriptionError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Received:
    data: dict[str, Any]
    at: float
    """Wall-clock time (time.time()) when the message was read."""


class Subscription:
    def __init__(self, socket: ClientConnection, operation: str) -> None:
        self._socket = socket
        self._operation = operation

    async def messages(self) -> AsyncIterator[Received]:
        """Each ``next`` payload's data until ``complete``; raises on ``error``."""
        while True:
            message = json.loads(await self._socket.recv())
            now = time.time()
            kind = message["type"]
            if kind == "ping":
                await self._socket.send(json.dumps({"type": "pong"}))
            elif kind == "next":
                payload = message["payload"]
                if payload.get("errors"):
                    raise SubscriptionError(str(payload["errors"]))
                yield Received(payload["data"], now)
            elif kind == "complete":
                return
            elif kind == "error":
                raise SubscriptionError(str(message["payload"]))


class Connection:
    """An initialised graphql-transport-ws connection, ready to carry one subscription."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket

    async def subscribe(self, query: str, variables: dict[str, Any]) -> Subscription:
        operation = uuid.uuid4().hex
        payload = {"query": query, "variables": variables}
        await self._socket.send(json.dumps({"id": operation, "type": "subscribe", "payload": payload}))
        return Subscription(self._socket, operation)


@asynccontextmanager
async def connect(base_url: str, credentials: Credentials) -> AsyncIterator[Connection]:
    """Open the socket and complete ``connection_init`` / ``connection_ack``."""
    url = base_url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(
        url,
        subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
        additional_headers={"x-user": credentials.user},
        max_size=None,
        open_timeout=60,
    ) as socket:
        await socket.send(json.dumps({"type": "connection_init", "payload": credentials.init_payload}))
        ack = json.loads(await socket.recv())
        if ack["type"] != "connection_ack":
            raise SubscriptionError(f"no connection_ack: {ack}")
        yield Connection(socket)
