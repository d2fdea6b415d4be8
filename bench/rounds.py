"""Rounds of the two sides of a comparison, interleaved and alternating which goes first."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

Measure = Callable[[], Awaitable[float]]


async def interleaved(rounds: int, ours: Measure, baseline: Measure) -> tuple[list[float], list[float]]:
    ours_samples: list[float] = []
    baseline_samples: list[float] = []
    for index in range(rounds):
        if index % 2 == 0:
            ours_samples.append(await ours())
            baseline_samples.append(await baseline())
        else:
            baseline_samples.append(await baseline())
            ours_samples.append(await ours())
    return ours_samples, baseline_samples
