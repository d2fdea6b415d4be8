"""Run a plan's steps: independent stages in parallel, each through DVC, dependents after their needs.

A stage runs only after everything it needs succeeded or was skipped. On a failure the default is
to start nothing new (stages already running finish); with ``keep_going`` independent branches go
on and only the failed stage's dependents are NOT_RUN. ``abort`` stops every running stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from app.domain.runs import StageRunState
from workers.execution import StageResult, StageSession, launch_stage
from workers.runs import faults
from workers.runs.event_lane import EventLane
from workers.runs.planner import Step
from workers.runs.recorder import RunRecorder

logger = logging.getLogger(__name__)


class RunningStep(Protocol):
    """A step under way: a stage's DVC process, or the environment step (workers.environments)."""

    async def wait(self) -> StageResult: ...

    async def stop(self, grace_seconds: float = 1.0) -> None: ...


EnvironmentBuilder = Callable[[Callable[[str], Awaitable[None]]], RunningStep]
"""Starts the environment step, handing its output to the callback given."""
ENVIRONMENT_FAILED = "the Python environment could not be built; see the step's log"


@dataclass
class Outcome:
    failed: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)


@dataclass
class Scheduler:
    recorder: RunRecorder
    root: Path
    steps: list[Step]
    force: bool
    keep_going: bool
    max_parallel: int
    limits: Mapping[str, int] = field(default_factory=dict)
    """setrlimit bounds for each command: cpu, as, nofile, fsize (see workers.execution.launch_stage)."""
    session: StageSession | None = None
    """The run's stage session (pipeline files read once), if one is open: stages are forked from it."""
    pipeline_name: str = ""
    """Only for workers.runs.faults (tests)."""
    env: Mapping[str, str] | None = None
    """The environment of each stage's DVC and command (default: workers.execution.stage_environment())."""
    build_environment: EnvironmentBuilder | None = None
    """Starts the plan's environment step, if it has one."""
    _processes: dict[str, RunningStep] = field(default_factory=dict)
    _lane: EventLane | None = None
    _abort_reason: str | None = None
    _launched: int = 0
    _abort_state: StageRunState = StageRunState.CANCELLED

    async def run(self) -> Outcome:
        """Run the steps; returns once every stage has ended and every event of theirs is recorded."""
        self._lane = EventLane()
        try:
            outcome = await self._run()
        except BaseException:
            # Whatever was handed over is still recorded, so that the run's final state follows its stages'.
            with contextlib.suppress(BaseException):
                await self._lane.close()
            raise
        await self._lane.close()
        return outcome

    def _record(self, name: str, state: StageRunState, **fields: Any) -> None:
        assert self._lane is not None
        self._lane.put(lambda: self.recorder.stage(name, state, **fields))

    def _check_recording(self) -> None:
        """A run whose events can no longer be stored stops here, as it would have had each event been awaited."""
        if self._lane is not None and self._lane.error is not None:
            raise self._lane.error

    async def _run(self) -> Outcome:
        outcome = Outcome()
        pending = {s.name: s for s in self.steps}
        settled_ok: set[str] = set()
        blocked: set[str] = set()
        running: dict[asyncio.Task[StageResult], str] = {}
        halted = False
        assert self._lane is not None
        # A failed recording ends the run at once, not when the stages under way end.
        recording_failed = asyncio.create_task(self._lane.failed())
        try:
            while pending or running:
                self._check_recording()
                if not halted and self._abort_reason is None:
                    for step in list(pending.values()):
                        if step.needs & blocked:
                            del pending[step.name]
                            blocked.add(step.name)
                            self._record(step.name, StageRunState.NOT_RUN, error="an upstream stage failed")
                        elif step.needs <= settled_ok and len(running) < self.max_parallel:
                            del pending[step.name]
                            running[await self._launch(step)] = step.name
                if not running:
                    break
                done, _ = await asyncio.wait({*running, recording_failed}, return_when=asyncio.FIRST_COMPLETED)
                self._check_recording()
                for task in running.keys() & done:
                    name = running.pop(task)
                    state = self._settle(name, task.result())
                    if state in (StageRunState.SUCCEEDED, StageRunState.SKIPPED):
                        settled_ok.add(name)
                        if state == StageRunState.SUCCEEDED:
                            outcome.ran.append(name)
                    else:
                        blocked.add(name)
                        if state == StageRunState.FAILED:
                            outcome.failed.append(name)
                            halted = halted or not self.keep_going
        finally:
            recording_failed.cancel()
            # Whatever ends the loop (success, failure, abort, worker shutdown): no stage keeps running.
            await asyncio.gather(*(p.stop() for p in self._processes.values()), return_exceptions=True)
        reason = self._abort_reason or "an earlier stage failed"
        for name in pending:
            self._record(name, StageRunState.NOT_RUN, error=reason)
        return outcome

    async def _launch(self, step: Step) -> asyncio.Task[StageResult]:
        if self._launched:
            faults.inject(self.pipeline_name, "between_stages")
        self._launched += 1
        self._record(step.name, StageRunState.RUNNING, started_at=datetime.now(UTC))
        lane = self._lane
        assert lane is not None

        async def on_output(text: str) -> None:
            lane.put(lambda: self.recorder.log(step.name, text))

        process: RunningStep
        if step.environment:
            assert self.build_environment is not None, "a plan with an environment step needs its builder"
            process = self.build_environment(on_output)
        else:
            process = await launch_stage(
                self.root,
                step.target,
                force=self.force,
                on_output=on_output,
                env=self.env,
                limits=self.limits,
                session=self.session,
            )
        self._processes[step.name] = process
        if self._abort_reason is not None:
            # The abort came while this stage was being launched, before it could be stopped with the others.
            await process.stop()
        return asyncio.create_task(process.wait(), name=f"stage:{step.name}")

    def _settle(self, name: str, result: StageResult) -> StageRunState:
        self._processes.pop(name, None)
        figures = {
            "finished_at": datetime.now(UTC),
            "exit_code": result.exit_code,
            "peak_memory_bytes": result.peak_memory_bytes,
            "cpu_seconds": result.cpu_seconds,
        }
        if self._abort_reason is not None and result.exit_code != 0:
            state = self._abort_state
            self._record(name, state, error=self._abort_reason, **figures)
        elif result.exit_code != 0:
            state = StageRunState.FAILED
            error = f"command exited with code {result.exit_code}"
            if self._is_environment(name):
                error = ENVIRONMENT_FAILED
            elif not result.command_ran:
                error = f"DVC failed before running the command (exit code {result.exit_code}); see the log"
            self._record(name, state, error=error, **figures)
        elif result.command_ran or self._is_data_source(name):
            # A data source has no command: DVC hashing and caching its data is its whole work.
            state = StageRunState.SUCCEEDED
            self._record(name, state, **figures)
        else:
            state = StageRunState.SKIPPED
            self._record(name, state, skip_reason=result.skip_reason or "unchanged", **figures)
        return state

    def _is_data_source(self, name: str) -> bool:
        return any(step.data_source for step in self.steps if step.name == name)

    def _is_environment(self, name: str) -> bool:
        return any(step.environment for step in self.steps if step.name == name)

    async def abort(self, reason: str, *, stage_state: StageRunState = StageRunState.CANCELLED) -> None:
        """Stop every running stage (their whole process groups); nothing new starts. The stages stopped end in
        ``stage_state``: CANCELLED when the run was cancelled or timed out, FAILED when the run failed under them."""
        self._abort_reason = reason
        self._abort_state = stage_state
        await asyncio.gather(*(p.stop() for p in list(self._processes.values())), return_exceptions=True)
