"""The lifespan closes what it opened: on shutdown, and when start-up fails half way (real FerretDB and Redis)."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import InvalidOperation
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from starlette.applications import Starlette

import app.lifespan
from app.db import create_client
from app.lifespan import build_lifespan
from app.settings import Settings
from tests.waiting import eventually


@pytest.fixture
def opened_clients(monkeypatch: pytest.MonkeyPatch) -> list[AsyncMongoClient[Any]]:
    """The real MongoDB clients the lifespan creates, kept so the test can tell whether they were closed."""
    clients: list[AsyncMongoClient[Any]] = []

    def recording_create_client(url: str) -> AsyncMongoClient[Any]:
        clients.append(create_client(url))
        return clients[-1]

    monkeypatch.setattr(app.lifespan, "create_client", recording_create_client)
    return clients


def _closed_port() -> int:
    """A local port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _settings(tmp_path: Path, database: str, **overrides: str) -> Settings:
    env = {**os.environ, "MONGODB_DATABASE": database, "WORKSPACE_ROOT": str(tmp_path / "workspaces"), **overrides}
    return Settings.from_env(env)


CLOSE_DEADLINE_SECONDS = 10.0
CLIENT_NAME = "lifespan-test"


async def _redis_client_gone(url: str) -> None:
    """Redis no longer lists a connection named CLIENT_NAME, within the deadline (else the test fails)."""
    async with Redis.from_url(url) as check:

        async def gone() -> bool:
            return not any(c.get("name") == CLIENT_NAME for c in await check.client_list())

        await eventually(gone, seconds=CLOSE_DEADLINE_SECONDS, what="the pool's Redis connection closed", every=0.05)


async def _is_closed(client: AsyncMongoClient[Any]) -> bool:
    try:
        await client.admin.command("ping")
    except InvalidOperation:  # PyMongo: "Cannot use AsyncMongoClient after close"
        return True
    return False


async def test_redis_unreachable_after_mongodb_opened_closes_mongodb(
    tmp_path: Path, opened_clients: list[AsyncMongoClient[Any]]
) -> None:
    database = f"lifespan_{uuid.uuid4().hex[:12]}"
    settings = _settings(tmp_path, database, REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0")

    with pytest.raises(RedisConnectionError):
        async with build_lifespan(settings)(Starlette()):
            pytest.fail("the lifespan started without Redis")

    [client] = opened_clients
    assert await _is_closed(client)
    # MongoDB was really opened and used before Redis failed: the indexes of start-up are there.
    async with create_client(settings.mongodb_url) as check:
        try:
            indexes = await check[database].users.index_information()
            assert any(index.get("unique") for index in indexes.values())
        finally:
            await check.drop_database(database)


async def test_shutdown_closes_mongodb_and_redis(tmp_path: Any, opened_clients: list[AsyncMongoClient[Any]]) -> None:
    database = f"lifespan_{uuid.uuid4().hex[:12]}"
    settings = _settings(tmp_path, database)

    async with build_lifespan(settings)(Starlette()) as state:
        shared = state["app"]
        assert (await shared.db.command("ping"))["ok"] == 1
        await shared.redis.client_setname(CLIENT_NAME)  # names the pool's connection, to look for it afterwards
        assert any(c.get("name") == CLIENT_NAME for c in await shared.redis.client_list())
        assert not await _is_closed(shared.mongo)

    assert opened_clients == [shared.mongo]
    assert await _is_closed(shared.mongo)
    await _redis_client_gone(settings.redis_url)
    async with create_client(settings.mongodb_url) as check:
        await check.drop_database(database)
