"""Recording a run's events in order without making the stages wait for MongoDB.

The scheduler hands each recorder call to the lane and goes on (the next stage starts as soon as the previous one
ended, not once its SUCCEEDED event is stored). Each call starts at once, in the order given: the recorder numbers
events first come, first served (its lock is fair), so subscribers see exactly the sequence they would have seen had
every call been awaited in place, and the calls that pile up while one batch is written go out in the next batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

Call = Callable[[], Awaitable[object]]


class EventLane:
    def __init__(self) -> None:
        self._pending: set[asyncio.Task[object]] = set()
        self.error: BaseException | None = None
        """The first failure of a call; later calls are dropped (the run cannot be recorded faithfully any more)."""
        self._failed = asyncio.Event()

    def put(self, call: Call) -> None:
        if self.error is not None:
            return
        task: asyncio.Task[object] = asyncio.ensure_future(call())
        self._pending.add(task)
        task.add_done_callback(self._settled)

    async def close(self) -> None:
        """Wait for the calls still under way; raise the first failure, if any."""
        while self._pending:
            await asyncio.wait(set(self._pending))
        if self.error is not None:
            raise self.error

    async def failed(self) -> None:
        """Returns once a call failed (``error`` is then set)."""
        await self._failed.wait()

    def cancel(self) -> None:
        for task in self._pending:
            task.cancel()

    def _settled(self, task: asyncio.Task[object]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None and self.error is None:
            self.error = task.exception()
            self._failed.set()
