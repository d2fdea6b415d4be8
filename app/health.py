"""GET /health: is MongoDB reachable, is Redis reachable, is a worker alive, can the workers sandbox stage commands.

Without a valid token it answers only ok or not (``{"status": "ok"}`` or ``"degraded"``, 200 or 503): the details
(component errors, latencies, the worker's queue figures) tell an outsider too much about the service.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from arq.constants import health_check_key_suffix
from pymongo.errors import PyMongoError
from starlette.requests import Request
from starlette.responses import JSONResponse

from app.domain.errors import Unauthenticated
from app.sandbox_status import STALE_AFTER_SECONDS, sandbox_status_key
from app.services.auth import bearer_secret
from app.state import AppState

CHECK_TIMEOUT_SECONDS = 2.0


async def _check(probe: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(probe(), CHECK_TIMEOUT_SECONDS)
    except Exception as error:  # every failure is an answer here, not a crash
        return {
            "ok": False,
            "error": f"{type(error).__name__}: {error}" if str(error) else type(error).__name__,
        }
    result: dict[str, Any] = {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}
    if isinstance(detail, dict):
        result |= detail
    return result


async def health(request: Request) -> JSONResponse:
    state: AppState = request.state.app

    async def mongodb() -> None:
        await state.db.command("ping")

    async def redis() -> None:
        await state.redis.ping()

    async def worker() -> dict[str, Any]:
        # Each live arq worker refreshes this key every few seconds; it expires when none does.
        info = await state.redis.get(state.settings.queue_name + health_check_key_suffix)
        if info is None:
            raise RuntimeError("no worker has reported in the last few seconds")
        return {"detail": info.decode() if isinstance(info, bytes) else str(info)}

    async def sandbox() -> dict[str, Any]:
        return await _sandbox_status(state)

    checks = dict(
        zip(
            ("mongodb", "redis", "worker", "sandbox"),
            await asyncio.gather(_check(mongodb), _check(redis), _check(worker), _check(sandbox)),
            strict=True,
        )
    )
    healthy = all(c["ok"] for c in checks.values())
    body: dict[str, Any] = {"status": "ok" if healthy else "degraded"}
    if await _may_see_details(request, state):
        body |= checks
    return JSONResponse(body, status_code=200 if healthy else 503)


async def _sandbox_status(state: AppState) -> dict[str, Any]:
    """Each live worker's stage sandbox (workers/sandbox/): fails when one cannot build it and so refuses stage
    commands; a worker running them unsandboxed (the operator's STAGES_UNSANDBOXED=true) is shown, not a failure."""
    key = sandbox_status_key(state.settings.runs_queue_name)
    entries: dict[Any, Any] = await state.redis.hgetall(key)  # type: ignore[misc]  # redis-py: sync-or-async
    now = time.time()
    workers: dict[str, Any] = {}
    for field, value in entries.items():
        status = json.loads(value)
        if now - float(status.get("recorded_at", 0)) <= STALE_AFTER_SECONDS:
            workers[field.decode() if isinstance(field, bytes) else str(field)] = status
    if not workers:
        raise RuntimeError("no worker has reported its stage sandbox in the last few seconds")
    refusing = {name: status["detail"] for name, status in workers.items() if status.get("mode") == "refusing"}
    if refusing:
        raise RuntimeError(
            "stage commands are refused: worker(s) cannot build their sandbox: "
            + "; ".join(f"{name}: {detail}" for name, detail in refusing.items())
        )
    return {"workers": workers}


async def _may_see_details(request: Request, state: AppState) -> bool:
    secret = bearer_secret(request.headers.get("authorization"))
    if secret is None:
        return False
    try:
        await asyncio.wait_for(state.services.auth.authenticate(secret), CHECK_TIMEOUT_SECONDS)
    except (Unauthenticated, PyMongoError, TimeoutError):
        return False  # without MongoDB nobody can be authenticated; the status alone still answers
    return True
