"""Launching one DVC stage (`dvc repro --single-item`) as its own process group, and stopping it.

By default DVC runs in a child forked from the worker's stage server (server.py, stage_server.py), which has DVC
imported already. With ``STAGE_LAUNCHER=subprocess`` in the worker's environment, or while the server is still
starting, it runs as a new `python -m dvc` process (about 1 s of start-up per stage). Either way it is DVC's own CLI
entry with the same arguments, environment and stage shell, so results, output and dvc.lock are the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from workers.execution.environment import stage_environment
from workers.execution.groups import group_alive, terminate_group
from workers.execution.output import OutputCallback, OutputPump
from workers.execution.server import StageSession, start_stage
from workers.execution.shell import LIMITS_ENV, RUSAGE_FILE_ENV, new_usage_report, read_usage, stage_shell_path

LAUNCHER_ENV = "STAGE_LAUNCHER"
SUBPROCESS_LAUNCHER = "subprocess"

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


class _DvcProcess(Protocol):
    """The DVC process of a stage, leader of the stage's process group."""

    @property
    def pid(self) -> int: ...

    async def wait(self) -> int:
        """Its exit code once it ended (-N for signal N)."""
        ...

    def release(self) -> None:
        """Give up its output pipe (called once the output is read, or no longer worth waiting for)."""
        ...


class _Subprocess:
    """`python -m dvc` started by asyncio (which closes the output pipe with the process)."""

    def __init__(self, process: asyncio.subprocess.Process, stdout: asyncio.StreamReader) -> None:
        self._process = process
        self.stdout = stdout

    @property
    def pid(self) -> int:
        return self._process.pid

    async def wait(self) -> int:
        return await self._process.wait()

    def release(self) -> None:
        pass


class StageProcess:
    """A running `dvc repro --single-item`: its process group, its result, and a way to stop it."""

    def __init__(self, process: _DvcProcess, pump: OutputPump, report: Path) -> None:
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
            self._process.release()
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
    limits: Mapping[str, int] | None = None,
    session: StageSession | None = None,
) -> StageProcess:
    """Start `dvc --wait-for-lock repro --single-item [--force] TARGET` in ``root`` as a new process group.

    ``target`` is DVC's stage address relative to ``root`` (``pipelines/ml/dvc.yaml:train``). Output (stdout and
    stderr merged, in order) goes to ``on_output`` while it runs. ``env`` defaults to ``stage_environment()``; the
    stage shell's variables are added to it. ``limits`` (``cpu``, ``as``, ``nofile``, ``fsize``) bound the
    command's CPU seconds, address space, open files and file size with setrlimit. The group dies with the worker
    (Linux). Call it from the thread that runs the worker's event loop (the stage server, started on first use,
    dies with the thread that started it). With a ``session`` (``open_session``) holding the target, the stage is
    forked from it and DVC does not read the workspace's pipeline files again; otherwise it starts as above.
    """
    # Sandboxed (workers/sandbox/) unless ``env`` is given; in a thread, as the first stage in a workspace grants the
    # sandbox's user access to its files.
    run_env = dict(await asyncio.to_thread(stage_environment, workspace=root) if env is None else env)
    shell = stage_shell_path()
    report = new_usage_report()
    run_env["SHELL"] = str(shell)
    run_env[RUSAGE_FILE_ENV] = str(report)
    if limits:
        run_env[LIMITS_ENV] = ",".join(f"{key}={int(value)}" for key, value in limits.items())
    dvc_args = ["--wait-for-lock", "repro", "--single-item", *(["--force"] if force else []), "--", target]
    try:
        process: _DvcProcess
        stage = None
        if os.environ.get(LAUNCHER_ENV) != SUBPROCESS_LAUNCHER:
            if session is not None:
                stage = await session.start(root, dvc_args, run_env)
            if stage is None:
                stage = await start_stage(root, dvc_args, run_env)
        if stage is not None:
            process, stdout = stage, stage.stdout
        else:
            # Asked for, or no stage server is ready yet (it takes a second to start): a process of its own.
            process = subprocess_process = await _launch_subprocess(root, dvc_args, run_env, shell)
            stdout = subprocess_process.stdout
    except BaseException:
        report.unlink(missing_ok=True)
        raise
    return StageProcess(process, OutputPump(stdout, on_output), report)


async def _launch_subprocess(root: Path, dvc_args: list[str], run_env: dict[str, str], shell: Path) -> _Subprocess:
    process = await asyncio.create_subprocess_exec(
        # Through the stage shell's trampoline: dies with this process, and ignores SIGTERM (a stop's SIGTERM is
        # for the command; DVC then reports the command's failure and exits by itself).
        str(shell),
        "--exec",
        str(os.getpid()),
        sys.executable,
        "-m",
        "dvc",
        *dvc_args,
        cwd=root,
        env=run_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    return _Subprocess(process, process.stdout)
