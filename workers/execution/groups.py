"""Signalling a stage's process group and waiting for it to be gone."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

POLL_SECONDS = 0.02
PROC = Path("/proc")


def signal_group(pgid: int, signum: int) -> None:
    """Send ``signum`` to every process of the group; nothing when the group is already gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies waiting for their parent to reap them do not)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not sys.platform.startswith("linux"):
        return True
    # Orphaned members are reaped by init; where there is none (the worker as PID 1 without `init: true`),
    # they stay zombies of ours for ever, and still count for kill(2).
    return any(state != "Z" for state in _member_states(pgid))


async def wait_group_gone(pgid: int, seconds: float) -> bool:
    """Poll until no process of the group runs; False if some still do after ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while group_alive(pgid):
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(POLL_SECONDS)
    return True


async def terminate_group(pgid: int, grace_seconds: float, kill_timeout: float = 5.0) -> None:
    """SIGTERM the group, SIGKILL what is left after ``grace_seconds``, return once nothing of it runs."""
    if not group_alive(pgid):
        return
    signal_group(pgid, signal.SIGTERM)
    if await wait_group_gone(pgid, grace_seconds):
        return
    signal_group(pgid, signal.SIGKILL)
    if not await wait_group_gone(pgid, kill_timeout):
        raise TimeoutError(f"process group {pgid} still runs {kill_timeout} s after SIGKILL")


def _member_states(pgid: int) -> list[str]:
    states = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'.
        fields = stat.rpartition(")")[2].split()
        if len(fields) >= 3 and fields[2] == str(pgid):
            states.append(fields[0])
    return states
