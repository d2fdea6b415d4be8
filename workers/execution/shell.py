"""The stage shell (stage_shell.c) as an executable, built once per worker process, and the usage it reports.

DVC runs every stage command as ``$SHELL -c CMD`` with $SHELL the stage shell: it runs ``/bin/sh -c CMD`` (behind the
``STAGE_SANDBOX_ARGV`` prefix when that is set), measures it (peak RSS, CPU) and takes the stage's group down if DVC
dies. It is C because it starts for every command: ~1 ms, against ~25 ms for a Python one (see stage_shell.c). The
same executable is the sandbox's PID 1 (``stage-shell --init``, workers/sandbox/argv.py INIT), handed to bwrap as
fd 3: it drops a root worker's command to the sandbox's user and waits for it.

Built with the system's C compiler (``$CC``, else ``cc``) the first time the worker needs it (at start-up,
workers/__main__.py), into a private temporary folder removed at exit. An image without a compiler ships it built
from the same source with the same flags (the Dockerfile) and names it in ``STAGE_SHELL_BINARY``.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

RUSAGE_FILE_ENV = "STAGE_RUSAGE_FILE"
"""The file the stage shell appends one JSON line to when a command starts, and one when it ends."""
LIMITS_ENV = "STAGE_LIMITS"
"""``cpu=S,as=B,nofile=N,fsize=B``: resource limits for the command, applied in its process before exec."""
GROUP_ENV = "STAGE_PROCESS_GROUP"
"""Set by the stage's DVC process to the group it leads: only inside such a group may the stage shell kill its group."""
SANDBOX_ARGV_ENV = "STAGE_SANDBOX_ARGV"
"""A prefix for ``/bin/sh -c CMD`` (e.g. a bwrap argv), its arguments separated by SANDBOX_ARGV_SEPARATOR."""
SANDBOX_ARGV_SEPARATOR = "\x1f"
EXECUTABLE_NAME = "stage-shell"
SOURCE = Path(__file__).with_name("stage_shell.c")
STAGE_SHELL_BINARY_ENV = "STAGE_SHELL_BINARY"
COMPILE_FLAGS = ("-O2", "-Wall", "-Werror")
COMPILE_SECONDS = 60

_lock = threading.Lock()
_installed: Path | None = None


class StageShellError(RuntimeError):
    """The stage shell could not be built."""


def stage_shell_path() -> Path:
    """The stage shell executable: ``$STAGE_SHELL_BINARY`` when set, else compiled on first use (see the module)."""
    global _installed
    prebuilt = os.environ.get(STAGE_SHELL_BINARY_ENV)
    if prebuilt:
        if not os.access(prebuilt, os.X_OK):
            raise StageShellError(f"{STAGE_SHELL_BINARY_ENV}={prebuilt} is not an executable")
        return Path(prebuilt)
    with _lock:
        if _installed is None or not _installed.exists():
            folder = Path(tempfile.mkdtemp(prefix="stage-shell-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            _installed = compile_stage_shell(folder / EXECUTABLE_NAME)
        return _installed


def compile_stage_shell(path: Path) -> Path:
    """Compile stage_shell.c into ``path``; raises StageShellError with the compiler's words when it cannot."""
    compiler = shutil.which(os.environ.get("CC") or "cc")
    if compiler is None:
        raise StageShellError("no C compiler (cc) to build the stage shell with: install one or set STAGE_SHELL_BINARY")
    try:
        result = subprocess.run(
            [compiler, *COMPILE_FLAGS, "-o", str(path), str(SOURCE)],
            capture_output=True,
            text=True,
            timeout=COMPILE_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise StageShellError(f"the stage shell did not compile: {error}") from error
    if result.returncode != 0:
        path.unlink(missing_ok=True)
        raise StageShellError(f"the stage shell did not compile: {result.stderr.strip()[-2000:]}")
    return path


@dataclass(frozen=True)
class CommandUsage:
    """What the stage shell recorded for one stage: whether a command started, and its measured usage."""

    commands_started: int
    peak_memory_bytes: int | None
    cpu_seconds: float | None


def read_usage(report: Path) -> CommandUsage:
    """Read the JSON lines the stage shell appended to ``report`` (a missing file: no command ran)."""
    try:
        lines = report.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    started = 0
    peaks: list[int] = []
    cpu: list[float] = []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            # A line cut short by a SIGKILL mid-write: the command did start.
            started += 1
            continue
        if "exit_code" not in entry:
            started += 1
            continue
        # ru_maxrss is in KiB on Linux.
        peaks.append(int(entry["maxrss_kib"]) * 1024)
        cpu.append(float(entry["utime"]) + float(entry["stime"]))
    return CommandUsage(
        commands_started=started,
        peak_memory_bytes=max(peaks) if peaks else None,
        cpu_seconds=sum(cpu) if cpu else None,
    )


def new_usage_report() -> Path:
    """A fresh, empty file for one launch's usage lines."""
    fd, name = tempfile.mkstemp(prefix="stage-rusage-", suffix=".jsonl")
    os.close(fd)
    return Path(name)
