"""The environment step of a run: builds (or finds) the project's environment before its first stage.

To the scheduler it looks like a stage's process (``wait`` gives a StageResult, ``stop`` ends it), so it has a state,
a log (uv's output), and cancel and timeout stop it like any stage. Built now: SUCCEEDED; found built: SKIPPED with
the reason; refused requirements or a failed build: FAILED, with the reason or uv's output in its log.
"""

from __future__ import annotations

import asyncio
import signal
import time

from workers.environments.requirements import Requirements
from workers.environments.store import EnvironmentBuildFailed, EnvironmentStore, OutputCallback
from workers.execution import StageResult

ALREADY_BUILT = "environment already built for this {source}"
BUILD_FAILED = "the Python environment could not be built; see the step's log"


class EnvironmentBuild:
    """The environment step while it runs."""

    def __init__(
        self,
        store: EnvironmentStore,
        requirements: Requirements | None,
        on_output: OutputCallback,
        *,
        refused: str | None = None,
    ) -> None:
        """``refused``: why the requirements cannot be used (the step fails with it in its log)."""
        self._store = store
        self._requirements = requirements
        self._refused = refused
        self._on_output = on_output
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="environment-step")

    async def wait(self) -> StageResult:
        return await asyncio.shield(self._task)

    async def stop(self, grace_seconds: float = 1.0) -> None:
        """End the build now (uv is killed, its temporary folder removed); the step's result says it was stopped."""
        if not self._task.done():
            self._stopping = True
            self._task.cancel()
        await asyncio.wait({self._task})

    async def _run(self) -> StageResult:
        try:
            return await self._build()
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            return _result(-signal.SIGTERM, ran=True)

    async def _build(self) -> StageResult:
        if self._refused is not None or self._requirements is None:
            await self._on_output(f"{self._refused or 'no requirements'}\n")
            return _result(1, ran=False)
        requirements = self._requirements
        started = time.monotonic()
        environment = self._store.environment_for(requirements.content)
        await self._on_output(f"environment {environment.root.name} for {requirements.source}\n")
        try:
            _, built = await self._store.ensure(requirements.content, self._on_output)
        except EnvironmentBuildFailed as failure:
            await self._on_output(f"{BUILD_FAILED} ({failure})\n")
            return _result(failure.exit_code or 1, ran=True)
        except OSError as error:
            # The store's folder unusable (disk full, permissions): the step says so, without the server's paths.
            await self._on_output(f"{BUILD_FAILED} ({type(error).__name__}: {error.strerror or 'no detail'})\n")
            return _result(1, ran=True)
        if not built:
            reason = ALREADY_BUILT.format(source=requirements.source)
            await self._on_output(f"{reason}\n")
            return _result(0, ran=False, skip_reason=reason)
        await self._on_output(f"environment built in {time.monotonic() - started:.1f} s\n")
        return _result(0, ran=True)


def _result(exit_code: int, *, ran: bool, skip_reason: str | None = None) -> StageResult:
    return StageResult(
        exit_code=exit_code, command_ran=ran, peak_memory_bytes=None, cpu_seconds=None, skip_reason=skip_reason
    )
