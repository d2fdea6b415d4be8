"""Launching one DVC stage (`dvc repro --single-item`) as its own process group, and stopping it.

Every stage is forked from a run's stage session (server.py, stage_server.py), which has DVC imported and the
workspace's Repo open, and reproduced there with DVC's ``Repo.reproduce``; DVC runs its command through the stage shell
(shell.py), which measures it. A launch without a session opens one for that stage alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from workers.execution.environment import stage_environment
from workers.execution.groups import group_alive, terminate_group
from workers.execution.output import OutputCallback, OutputPump
from workers.execution.server import ServerStage, StageSession, open_session
from workers.execution.shell import LIMITS_ENV, RUSAGE_FILE_ENV, new_usage_report, read_usage, stage_shell_path

# What a stage's command left running in the background after DVC finished gets this long to end on a SIGTERM.
STRAGGLER_GRACE_SECONDS = 1.0
# A process that left the group (setsid) may still hold the output pipe once DVC is done: stop reading after this.
OUTPUT_DRAIN_SECONDS = 2.0


@dataclass(frozen=True)
class StageResult:
    """How one launch ended."""

    exit_code: int
    """The DVC process's exit code (0: success); -N when a signal N killed it."""
    command_ran: bool
    """Whether DVC started the stage's command (False: skipped as unchanged, or restored from its run-cache)."""
    peak_memory_bytes: int | None
    """Peak resident memory of the stage's command (the largest over its commands), not of DVC."""
    cpu_seconds: float | None
    """User plus system CPU time of the stage's commands, not of DVC."""
    skip_reason: str | None
    """When the command did not run: DVC's line saying why, e.g. "Stage 'dvc.yaml:a' didn't change, skipping"."""


class StageProcess:
    """A running `dvc repro --single-item`: its process group, its result, and a way to stop it."""

    def __init__(
        self, process: ServerStage, pump: OutputPump, report: Path, own_session: StageSession | None = None
    ) -> None:
        self.pid = process.pid
        self._process = process
        self._pump = pump
        self._report = report
        self._own_session = own_session
        self._pump_task = asyncio.create_task(pump.run(), name=f"stage-output-{self.pid}")
        self._finished = asyncio.create_task(self._finish(), name=f"stage-{self.pid}")
        self._stop_lock = asyncio.Lock()

    async def wait(self) -> StageResult:
        """Wait for DVC to end (and the output to be handed over); raises what ``on_output`` raised, if anything."""
        return await asyncio.shield(self._finished)

    async def stop(self, grace_seconds: float = 1.0) -> None:
        """SIGTERM the whole group, SIGKILL it after ``grace_seconds``; return once no process of it runs."""
        async with self._stop_lock:
            if not self._finished.done():
                await terminate_group(self.pid, grace_seconds)
            await self._process.wait()

    async def _finish(self) -> StageResult:
        try:
            exit_code = await self._process.wait()
            if group_alive(self.pid):
                await terminate_group(self.pid, STRAGGLER_GRACE_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._pump_task, OUTPUT_DRAIN_SECONDS)
            usage = read_usage(self._report)
        finally:
            self._process.release()
            self._report.unlink(missing_ok=True)
            if self._own_session is not None:
                self._own_session.close()
        if self._pump.callback_error is not None:
            raise self._pump.callback_error
        ran = usage.commands_started > 0
        return StageResult(
            exit_code=exit_code,
            command_ran=ran,
            peak_memory_bytes=usage.peak_memory_bytes,
            cpu_seconds=usage.cpu_seconds,
            skip_reason=None if ran else self._pump.skip_line,
        )


async def launch_stage(
    root: Path,
    target: str,
    *,
    force: bool,
    on_output: OutputCallback,
    env: Mapping[str, str] | None = None,
    limits: Mapping[str, int] | None = None,
    session: StageSession | None = None,
) -> StageProcess:
    """Start `dvc repro --single-item [--force] TARGET` in ``root`` as a new process group, forked from ``session``.

    ``target`` is DVC's stage address relative to ``root`` (``pipelines/ml/dvc.yaml:train``). Output (stdout and
    stderr merged, in order) goes to ``on_output`` while it runs. ``env`` defaults to ``stage_environment()``; the
    stage shell's variables are added to it. ``limits`` (``cpu``, ``as``, ``nofile``, ``fsize``) bound the
    command's CPU seconds, address space, open files and file size with setrlimit. The group dies with the worker
    (Linux). ``session`` is the run's (``open_session`` on ``root``); without one, a session is opened for this stage
    and closed when it ends. Call it from the thread that runs the worker's event loop (the stage server, started on
    first use, dies with the thread that started it).
    """
    # Sandboxed (workers/sandbox/) unless ``env`` is given; in a thread, as the first stage in a workspace grants the
    # sandbox's user access to its files.
    base_env = await asyncio.to_thread(stage_environment, workspace=root) if env is None else env
    report = new_usage_report()
    own_session = None
    try:
        run_env = dict(base_env)
        run_env["SHELL"] = str(stage_shell_path())
        run_env[RUSAGE_FILE_ENV] = str(report)
        if limits:
            run_env[LIMITS_ENV] = ",".join(f"{key}={int(value)}" for key, value in limits.items())
        if session is None:
            session = own_session = await open_session(root, [target.rpartition(":")[0]], run_env)
        stage = await session.start(target, force=force, env=run_env)
    except BaseException:
        report.unlink(missing_ok=True)
        if own_session is not None:
            own_session.close()
        raise
    return StageProcess(stage, OutputPump(stage.stdout, on_output), report, own_session)
