"""Recording a run's events in order without making the stages wait for MongoDB.

The scheduler hands each recorder call to the lane and goes on (the next stage starts as soon as the previous one
ended, not once its SUCCEEDED event is stored); one task makes the calls one after the other, in the order given, so
subscribers see exactly the sequence they would have seen had every call been awaited in place.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

Call = Callable[[], Awaitable[object]]


class EventLane:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[Call | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._drain(), name="run-event-lane")
        self.error: BaseException | None = None
        """The first failure of a call; later calls are dropped (the run cannot be recorded faithfully any more)."""

    def put(self, call: Call) -> None:
        self._queue.put_nowait(call)

    async def close(self) -> None:
        """Make the calls still queued, then stop; raise the first failure, if any."""
        self._queue.put_nowait(None)
        await asyncio.shield(self._task)
        if self.error is not None:
            raise self.error

    def cancel(self) -> None:
        self._task.cancel()

    async def _drain(self) -> None:
        while (call := await self._queue.get()) is not None:
            if self.error is not None:
                continue
            try:
                await call()
            except Exception as error:
                self.error = error
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                self._queue.get_nowait()
