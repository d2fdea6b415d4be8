"""The worker's filter of arq's routine lines: periodic jobs' INFO lines dropped, the rest kept."""

from __future__ import annotations

import logging

from workers.__main__ import RoutineJobLines


def record(level: int, message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("arq.worker", level, __file__, 1, message, args, None)


def test_periodic_jobs_info_lines_are_dropped_and_everything_else_kept() -> None:
    keep = RoutineJobLines().filter
    assert not keep(record(logging.INFO, "%6.2fs → %s(%s)%s", 1.0, "cron:reap_lost_runs", "", ""))
    assert not keep(record(logging.INFO, "%6.2fs ← %s ● %s", 0.01, "cron:reap_lost_runs", 0))
    assert not keep(record(logging.INFO, "recording health: %s", "Dec-02 j_complete=3"))
    assert keep(record(logging.ERROR, "%6.2fs ! %s failed, %s: %s", 1.0, "cron:reap_lost_runs", "E", "boom"))
    assert keep(record(logging.INFO, "%6.2fs → %s(%s)%s", 0.0, "abc:execute_run", "'r1'", ""))
    assert keep(record(logging.INFO, "Starting worker for %d functions: %s", 2, "a, b"))
