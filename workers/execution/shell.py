"""The stage shell as an executable (installed once per worker process) and the usage it reports."""

from __future__ import annotations

import atexit
import json
import os
import shlex
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from workers.execution import stage_shell

RUSAGE_FILE_ENV = stage_shell.RUSAGE_FILE_ENV
LIMITS_ENV = stage_shell.LIMITS_ENV
EXECUTABLE_NAME = "stage-shell"
# Linux reads at most 255 bytes of a '#!' line (BINPRM_BUF_SIZE); a longer interpreter path goes through /bin/sh.
MAX_SHEBANG = 200

_lock = threading.Lock()
_installed: Path | None = None


def stage_shell_path() -> Path:
    """The stage shell executable, written on first use to a private temporary folder removed at exit."""
    global _installed
    with _lock:
        if _installed is None or not _installed.exists():
            folder = Path(tempfile.mkdtemp(prefix="stage-shell-"))
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            _installed = _write_executable(folder / EXECUTABLE_NAME)
        return _installed


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
