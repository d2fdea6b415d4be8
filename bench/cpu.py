"""CPU time of processes and of the whole machine, from /proc (Linux): who was busy while a benchmark ran."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def process_seconds(pid: int) -> float:
    """User plus system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # After the command: state is field 3 of stat(5), so utime (14) and stime (15) are at 11 and 12 here.
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass
class CpuWindow:
    """CPU use between ``start`` and ``stop`` of some processes (in cores) and of the machine (busy share)."""

    pids: dict[str, int]
    _started: dict[str, float] | None = None
    _machine: tuple[int, int] | None = None
    _wall: float = 0.0

    def start(self, now: float) -> None:
        self._started = {name: process_seconds(pid) for name, pid in self.pids.items()}
        self._machine = machine_ticks()
        self._wall = now

    def stop(self, now: float) -> dict[str, float]:
        """Each process's cores used on average, and ``machine`` the busy share of all CPUs (0..1)."""
        assert self._started is not None and self._machine is not None
        wall = max(now - self._wall, 1e-9)
        used = {name: (process_seconds(pid) - self._started[name]) / wall for name, pid in self.pids.items()}
        busy, total = machine_ticks()
        used["machine"] = (busy - self._machine[0]) / max(total - self._machine[1], 1)
        return used
