"""A WebSocket keeps its rights only while its token does, and its operations are capped.

Issue 13: a WebSocket authenticated at `connection_init` kept its rights after its token was revoked, and operations
over it could mint a new token. Here a stack of its own checks tokens every second (WS_TOKEN_CHECK_SECONDS=1), so the
tests wait seconds, not a minute; a real graphql-transport-ws client talks to it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import websockets
from bson import ObjectId
from pymongo import MongoClient

from tests.api.pipeline_fixtures import create_pipeline
from tests.api.run_helpers import RUN_UPDATES, execute, stage_states, wait_for_run
from tests.conftest import CREATE_PROJECT, GraphQLClient, create_user_with_cli
from tests.stack import Stack, running_stack

CHECK_SECONDS = 1.0
PER_CONNECTION, PER_USER = 2, 3
TOKENS = "query { apiTokens { id name revokedAt } }"
CREATE_TOKEN = 'mutation { createApiToken(name: "minted") { __typename ... on ApiTokenCreated { secret } } }'
REVOKE = "mutation($id: ID!) { revokeApiToken(id: $id) { __typename } }"


@pytest.fixture(scope="module")
def ws_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("ws-stack")
    with running_stack(
        base / "workspaces",
        base,
        WS_TOKEN_CHECK_SECONDS=str(CHECK_SECONDS),
        WS_MAX_OPERATIONS_PER_CONNECTION=str(PER_CONNECTION),
        WS_MAX_OPERATIONS_PER_USER=str(PER_USER),
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def slow_check_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Periodic checks ten minutes apart: whatever refuses an operation within a test is the per-operation check."""
    base = tmp_path_factory.mktemp("ws-slow-stack")
    with running_stack(base / "workspaces", base, WS_TOKEN_CHECK_SECONDS="600") as stack:
        yield stack


@pytest.fixture
async def http(ws_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=ws_stack.base_url, timeout=60) as client:
        yield client


async def two_tokens(stack: Stack, http: httpx.AsyncClient) -> tuple[GraphQLClient, GraphQLClient, str]:
    """A user with two tokens: the one a socket will use, another to revoke it with, and the first one's id."""
    name = f"ws-{uuid.uuid4().hex[:8]}"
    first = GraphQLClient(http, create_user_with_cli(stack, name), name)
    created = await first.execute('mutation { createApiToken(name: "second") { ... on ApiTokenCreated { secret } } }')
    second = GraphQLClient(http, created["createApiToken"]["secret"], name)
    tokens = (await second.execute(TOKENS))["apiTokens"]
    first_id = next(t["id"] for t in tokens if t["name"] != "second")
    return first, second, first_id


class Socket:
    def __init__(self, socket: websockets.ClientConnection) -> None:
        self.socket = socket

    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send(json.dumps(message))

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        operation = uuid.uuid4().hex
        await self.send({"id": operation, "type": "subscribe", "payload": {"query": query, "variables": variables}})
        return operation

    async def next_message(self, seconds: float) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(self.socket.recv(), seconds))
            if message["type"] == "ping":
                await self.send({"type": "pong"})
                continue
            return message

    async def close_code(self, seconds: float) -> int | None:
        """Read until the server closes the socket; its close code."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                await self.next_message(max(0.01, deadline - time.monotonic()))
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None


async def open_socket(stack: Stack, token: str) -> tuple[Socket, Any]:
    url = stack.base_url.replace("http://", "ws://") + "/graphql"
    connection = websockets.connect(url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")])
    socket = Socket(await connection.__aenter__())
    await socket.send({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    assert (await socket.next_message(10))["type"] == "connection_ack"
    return socket, connection


async def test_a_revoked_token_closes_its_socket_within_the_check_interval(
    ws_stack: Stack, http: httpx.AsyncClient
) -> None:
    first, second, first_id = await two_tokens(ws_stack, http)
    socket, connection = await open_socket(ws_stack, first.token)
    try:
        operation = await socket.subscribe("query { me { name } }")
        answer = await socket.next_message(10)
        assert answer["type"] == "next" and answer["id"] == operation, answer

        assert (await second.execute(REVOKE, {"id": first_id}))["revokeApiToken"]["__typename"] == "ApiToken"
        revoked_at = time.monotonic()
        code = await socket.close_code(CHECK_SECONDS * 5)
        closed_after = time.monotonic() - revoked_at
    finally:
        await connection.__aexit__(None, None, None)

    assert code == 4403
    assert closed_after < CHECK_SECONDS * 3, f"closed {closed_after:.1f}s after the revocation"


async def test_an_operation_after_revocation_is_refused_and_mints_nothing(slow_check_stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=slow_check_stack.base_url, timeout=60) as http:
        first, second, first_id = await two_tokens(slow_check_stack, http)
        socket, connection = await open_socket(slow_check_stack, first.token)
        try:
            assert (await second.execute(REVOKE, {"id": first_id}))["revokeApiToken"]["__typename"] == "ApiToken"
            operation = await socket.subscribe(CREATE_TOKEN)
            messages: list[dict[str, Any]] = []
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    messages.append(await socket.next_message(10))
        finally:
            await connection.__aexit__(None, None, None)
        names = [t["name"] for t in (await second.execute(TOKENS))["apiTokens"]]

    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    assert not [m for m in messages if m["type"] == "next"], messages
    assert all(m["type"] == "error" and m["id"] == operation for m in messages), messages
    assert "minted" not in names, names


async def test_an_expired_token_closes_its_socket(ws_stack: Stack, http: httpx.AsyncClient) -> None:
    first, _, first_id = await two_tokens(ws_stack, http)
    socket, connection = await open_socket(ws_stack, first.token)
    try:
        # Expire it in the database, as the passing of time would.
        client: MongoClient[dict[str, Any]] = MongoClient(ws_stack.env["MONGODB_URL"])
        client[ws_stack.env["MONGODB_DATABASE"]].api_tokens.update_one(
            {"_id": ObjectId(first_id)}, {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}}
        )
        client.close()
        code = await socket.close_code(CHECK_SECONDS * 5)
    finally:
        await connection.__aexit__(None, None, None)
    assert code == 4403


async def test_open_operations_are_capped_per_connection_and_per_user(ws_stack: Stack, http: httpx.AsyncClient) -> None:
    first, _, _ = await two_tokens(ws_stack, http)
    project = (await first.execute(CREATE_PROJECT, {"input": {"name": "held"}}))["createProject"]["project"]
    written = await create_pipeline(
        first, project["id"], name="long", stages=[{"name": "long", "command": "sleep 30", "outs": ["l.txt"]}]
    )
    run_id = await execute(first, written["pipeline"]["id"])
    await wait_for_run(first, run_id, lambda r: stage_states(r).get("long") == "RUNNING")
    one, one_connection = await open_socket(ws_stack, first.token)
    two, two_connection = await open_socket(ws_stack, first.token)
    try:
        held = [await _held(one, run_id) for _ in range(PER_CONNECTION)]
        over_connection = await one.subscribe(RUN_UPDATES, {"runId": run_id, "after": None})
        refused = await _first_for(one, over_connection)
        assert refused["type"] == "error", refused
        assert "limit" in json.dumps(refused["payload"]).lower()

        kept = await _held(two, run_id)  # the user's third
        over_user = await two.subscribe(RUN_UPDATES, {"runId": run_id, "after": None})  # the user's fourth
        refused_user = await _first_for(two, over_user)
        assert refused_user["type"] == "error", refused_user
        assert f"at most {PER_USER}" in json.dumps(refused_user["payload"])

        await one.send({"id": held[0], "type": "complete"})  # frees one of the user's slots
        again = await _eventually_next(two, run_id)
        assert again["type"] == "next", again
        assert kept
    finally:
        await one_connection.__aexit__(None, None, None)
        await two_connection.__aexit__(None, None, None)
        await first.post("mutation($id: ID!) { cancelRun(id: $id) { __typename } }", {"id": run_id})


async def _held(socket: Socket, run_id: str) -> str:
    """Subscribe and wait for the first update, so the operation surely holds its slot before the next one."""
    operation = await socket.subscribe(RUN_UPDATES, {"runId": run_id, "after": None})
    first = await _first_for(socket, operation)
    assert first["type"] == "next", first
    return operation


async def _first_for(socket: Socket, operation: str) -> dict[str, Any]:
    while True:
        message = await socket.next_message(10)
        if message.get("id") == operation:
            return message


async def _eventually_next(socket: Socket, run_id: str) -> dict[str, Any]:
    """Subscribe until the user's freed slot is seen (the completion is processed asynchronously)."""
    deadline = time.monotonic() + 10
    while True:
        operation = await socket.subscribe(RUN_UPDATES, {"runId": run_id, "after": None})
        message = await _first_for(socket, operation)
        if message["type"] == "next" or time.monotonic() > deadline:
            return message
        await asyncio.sleep(0.1)  # retry interval of a deadline-bounded wait
