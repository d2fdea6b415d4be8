"""The DVC CLI baseline: `python -m dvc ...` in a workspace, timed from spawn to exit."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CLI_TIMEOUT_SECONDS = 600.0
LOCKED_WAIT_SECONDS = 600.0
LOCKED = "Unable to acquire lock"


@dataclass(frozen=True, slots=True)
class CliResult:
    seconds: float
    output: str


class CliError(RuntimeError):
    pass


def _run(workspace: Path, args: list[str]) -> CliResult:
    """Run once; while DVC's repository lock is held (a worker job the API gave up waiting for may still hold it),
    wait and start again: only an unobstructed run is timed."""
    deadline = time.monotonic() + LOCKED_WAIT_SECONDS
    while True:
        try:
            return _run_once(workspace, args)
        except CliError as error:
            if LOCKED not in str(error) or time.monotonic() > deadline:
                raise
        time.sleep(0.5)  # polling interval of a deadline-bounded wait


def _run_once(workspace: Path, args: list[str]) -> CliResult:
    env = dict(os.environ) | {"DVC_NO_ANALYTICS": "1"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=workspace,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise CliError(f"dvc {' '.join(args)} exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return CliResult(seconds, done.stdout + done.stderr)


async def dvc(workspace: Path, *args: str) -> CliResult:
    """Run one DVC command to completion (in a thread: the harness's event loop stays free)."""
    return await asyncio.to_thread(_run, workspace, list(args))
