"""Sizes and round counts of the two modes: full (`make bench`) and smoke (`make bench-smoke`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sizes:
    smoke: bool
    rounds: int
    status_stages: tuple[int, ...]
    """Chain lengths of the status and dry-run benchmarks."""
    chain_stages: int
    wide_branches: int
    wide_sleep_seconds: float
    running_samples: int
    """Runs measured for mutation -> RUNNING."""
    fanout_subscribers: int
    fanout_stages: int
    """Parallel stages printing output, each one a stream of LOG events."""
    fanout_load_processes: int
    """Client processes the subscribers are spread over."""
    fanout_emit_seconds: float
    list_pipelines: int
    list_stages: int
    load_seconds: float
    load_connections: int


FULL = Sizes(
    smoke=False,
    rounds=5,
    status_stages=(50, 200),
    chain_stages=10,
    wide_branches=8,
    wide_sleep_seconds=1.0,
    running_samples=40,
    fanout_subscribers=200,
    fanout_stages=16,
    fanout_load_processes=4,
    fanout_emit_seconds=5.0,
    list_pipelines=50,
    list_stages=5,
    load_seconds=10.0,
    load_connections=16,
)

SMOKE = Sizes(
    smoke=True,
    rounds=1,
    status_stages=(5,),
    chain_stages=3,
    wide_branches=2,
    wide_sleep_seconds=0.2,
    running_samples=2,
    fanout_subscribers=2,
    fanout_stages=2,
    fanout_load_processes=2,
    fanout_emit_seconds=1.0,
    list_pipelines=3,
    list_stages=2,
    load_seconds=1.0,
    load_connections=4,
)
