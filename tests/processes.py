"""A stage command's process as the host sees it: stages run in their own PID namespace (workers/sandbox/), so the
pid a command writes (``echo $$ > pid.txt``) is its pid inside; the host's pid is the one whose NSpid ends there."""

from __future__ import annotations

import os
from pathlib import Path


def host_pid(inner_pid: int, cwd: Path) -> int | None:
    """The host pid of the process working in ``cwd`` whose innermost pid is ``inner_pid`` (unsandboxed: the same)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "cwd") != str(cwd):
                continue
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("NSpid:") and int(line.split()[-1]) == inner_pid:
                return int(entry.name)
    return None


def stage_pid(pid_file: Path) -> int:
    """The host pid of the command that wrote its ``$$`` into ``pid_file`` (in its workspace, where it runs)."""
    inner = int(pid_file.read_text())
    pid = host_pid(inner, pid_file.parent.resolve())
    assert pid is not None, f"no process runs as pid {inner} in {pid_file.parent}"
    return pid
