"""The stage shell as an executable (installed once per worker process) and the usage it reports."""

from __future__ import annotations

import atexit
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from workers.execution import stage_shell

RUSAGE_FILE_ENV = stage_shell.RUSAGE_FILE_ENV
LIMITS_ENV = stage_shell.LIMITS_ENV
EXECUTABLE_NAME = "stage-shell"
SOURCE = Path(__file__).with_name("stage_shell.c")
STAGE_SHELL_ENV = "STAGE_SHELL"
STAGE_SHELL_BINARY_ENV = "STAGE_SHELL_BINARY"
PYTHON_STAGE_SHELL = "python"
COMPILE_SECONDS = 60
# Linux reads at most 255 bytes of a '#!' line (BINPRM_BUF_SIZE); a longer interpreter path goes through /bin/sh.
MAX_SHEBANG = 200

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_installed: Path | None = None


def stage_shell_path() -> Path:
    """The stage shell executable, made on first use in a private temporary folder removed at exit.

    Compiled from stage_shell.c with the system's C compiler (``$CC``, else ``cc``) when there is one, since DVC
    starts it for every stage command and an interpreter's start-up would be paid each time; otherwise, or with
    ``STAGE_SHELL=python`` in the environment, stage_shell.py behind a ``#!python -IS`` line. An image without a
    compiler ships it built: ``STAGE_SHELL_BINARY`` names that executable (see the Dockerfile).
    """
    global _installed
    with _lock:
        prebuilt = os.environ.get(STAGE_SHELL_BINARY_ENV)
        if prebuilt and os.environ.get(STAGE_SHELL_ENV) != PYTHON_STAGE_SHELL and os.access(prebuilt, os.X_OK):
            return Path(prebuilt)
        if _installed is None or not _installed.exists():
            folder = Path(tempfile.mkdtemp(prefix="stage-shell-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            path = folder / EXECUTABLE_NAME
            if os.environ.get(STAGE_SHELL_ENV) == PYTHON_STAGE_SHELL or not _compile(path):
                _write_executable(path)
            _installed = path
        return _installed


def _compile(path: Path) -> bool:
    compiler = shutil.which(os.environ.get("CC") or "cc")
    if compiler is None:
        return False
    try:
        result = subprocess.run(
            [compiler, "-O2", "-o", str(path), str(SOURCE)],
            capture_output=True,
            text=True,
            timeout=COMPILE_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    if result.returncode != 0:
        logger.warning("stage shell not compiled, using the Python one: %s", result.stderr.strip()[-2000:])
        path.unlink(missing_ok=True)
        return False
    return True


def _write_executable(path: Path) -> Path:
    # -I: no user site, no PYTHON* variables, no cwd on sys.path (the command's cwd is the user's); -S: no site
    # import, which is most of an interpreter's start-up.
    shebang = f"#!{sys.executable} -IS\n"
    source = Path(stage_shell.__file__).read_text(encoding="utf-8")
    if len(shebang) > MAX_SHEBANG or " " in sys.executable:
        script = path.with_suffix(".py")
        script.write_text(source, encoding="utf-8")
        text = f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -IS {shlex.quote(str(script))} "$@"\n'
    else:
        text = shebang + source
    path.write_text(text, encoding="utf-8")
    path.chmod(0o700)
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
