"""Launching one DVC stage (`dvc repro --single-item`) as its own process group, and stopping it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from workers.execution.environment import stage_environment
from workers.execution.groups import group_alive, terminate_group
from workers.execution.output import OutputCallback, OutputPump
from workers.execution.shell import RUSAGE_FILE_ENV, new_usage_report, read_usage, stage_shell_path

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

    def __init__(self, process: asyncio.subprocess.Process, pump: OutputPump, report: Path) -> None:
        self.pid = process.pid
        self._process = process
        self._pump = pump
        self._report = report
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
            self._report.unlink(missing_ok=True)
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
) -> StageProcess:
    """Start `dvc --wait-for-lock repro --single-item [--force] TARGET` in ``root`` as a new process group.

    ``target`` is DVC's stage address relative to ``root`` (``pipelines/ml/dvc.yaml:train``). Output (stdout and
    stderr merged, in order) goes to ``on_output`` while it runs. ``env`` defaults to ``stage_environment()``; the
    stage shell's variables are added to it. The group dies with the worker (Linux).
    """
    shell = stage_shell_path()
    report = new_usage_report()
    run_env = dict(stage_environment() if env is None else env)
    run_env["SHELL"] = str(shell)
    run_env[RUSAGE_FILE_ENV] = str(report)
    dvc = [sys.executable, "-m", "dvc", "--wait-for-lock", "repro", "--single-item", *(["--force"] if force else [])]
    try:
        process = await asyncio.create_subprocess_exec(
            # Through the stage shell's trampoline: dies with this process, and ignores SIGTERM (a stop's SIGTERM is
            # for the command; DVC then reports the command's failure and exits by itself).
            str(shell),
            "--exec",
            str(os.getpid()),
            *dvc,
            "--",
            target,
            cwd=root,
            env=run_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except BaseException:
        report.unlink(missing_ok=True)
        raise
    assert process.stdout is not None
    return StageProcess(process, OutputPump(process.stdout, on_output), report)
