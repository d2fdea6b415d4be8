"""Waiting on a condition with a deadline: the one polling loop of the tests."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

POLL_SECONDS = 0.1


async def eventually(
    probe: Callable[[], T | Awaitable[T]], *, seconds: float, what: str, every: float = POLL_SECONDS
) -> T:
    """Call ``probe`` (plain or async) until it returns something true, and return that; after ``seconds``, fail
    naming ``what`` and the last value seen."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        assert time.monotonic() < deadline, f"{what}: not within {seconds}s (last seen: {value!r})"
        await asyncio.sleep(every)  # the interval between two looks, not a wait for the outcome
