"""Who may call at all: bearer tokens on HTTP and WebSocket, their life cycle, and the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import websockets

from app.services.auth import AuthService, hash_secret
from tests.conftest import GraphQLClient, MakeUser, create_user_with_cli
from tests.stack import Stack

ME = "query { me { id name } }"


async def test_without_a_token_nothing_but_health_answers(http: httpx.AsyncClient) -> None:
    assert (await http.get("/health")).status_code == 200
    for headers in ({}, {"authorization": "Bearer dvcs_not-a-real-token"}, {"authorization": "Basic abc"}):
        response = await http.post("/graphql", json={"query": ME}, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await http.get("/graphql", params={"query": ME})).status_code == 401


async def test_graphiql_page_is_served_without_a_token_but_holds_no_data(http: httpx.AsyncClient) -> None:
    page = await http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


async def test_a_websocket_without_a_valid_token_is_refused(stack: Stack) -> None:
    url = stack.base_url.replace("http://", "ws://") + "/graphql"
    for payload in ({}, {"Authorization": "Bearer dvcs_wrong"}):
        async with websockets.connect(url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]) as socket:
            await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await socket.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_tokens_are_created_listed_and_revoked(gql: GraphQLClient) -> None:
    created = (
        await gql.execute(
            'mutation { createApiToken(name: "laptop", expiresInDays: 30) { '
            "... on ApiTokenCreated { secret token { id name prefix expiresAt } } } }"
        )
    )["createApiToken"]
    second = GraphQLClient(gql.http, created["secret"], gql.name)
    assert (await second.execute(ME))["me"]["name"] == gql.name
    assert created["secret"].startswith(created["token"]["prefix"])

    listed = (await gql.execute("query { apiTokens { id name prefix revokedAt } }"))["apiTokens"]
    assert {
        "id": created["token"]["id"],
        "name": "laptop",
        "prefix": created["token"]["prefix"],
        "revokedAt": None,
    } in listed
    assert all("secret" not in t for t in listed)

    revoked = (
        await gql.execute(
            "mutation($id: ID!) { revokeApiToken(id: $id) { ... on ApiToken { revokedAt } } }",
            {"id": created["token"]["id"]},
        )
    )["revokeApiToken"]
    assert revoked["revokedAt"] is not None
    assert (await second.post(ME)).status_code == 401
    assert (await gql.post(ME)).status_code == 200


async def test_tokens_are_stored_only_as_hashes(gql: GraphQLClient, mongo: object) -> None:
    stored = mongo.api_tokens.find_one({"hash": hash_secret(gql.token)})  # type: ignore[attr-defined]
    assert stored is not None
    assert gql.token not in json.dumps(stored, default=str)


async def test_an_expired_token_is_refused(http: httpx.AsyncClient, auth: AuthService, make_user: MakeUser) -> None:
    user = await make_user()
    me = await auth.user_named(user.name)
    secret = "dvcs_expired-token-for-test"
    await auth.users.create_token(
        user_id=me.id,
        name="old",
        secret_hash=hash_secret(secret),
        prefix=secret[:11],
        expires_at=datetime.now(UTC) - timedelta(seconds=1),
    )
    response = await http.post("/graphql", json={"query": ME}, headers={"authorization": f"Bearer {secret}"})
    assert response.status_code == 401
    assert "expired" in response.json()["errors"][0]["message"]


async def test_the_first_user_comes_from_the_command_line(stack: Stack, http: httpx.AsyncClient) -> None:
    secret = create_user_with_cli(stack, "first-admin")
    me = GraphQLClient(http, secret, "first-admin")
    assert (await me.execute(ME))["me"]["name"] == "first-admin"
