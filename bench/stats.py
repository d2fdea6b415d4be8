"""Medians, spreads and percentiles of measured samples."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between closest ranks."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class Summary:
    """A figure over repeated rounds: its median and its spread (min..max)."""

    median: float
    low: float
    high: float
    count: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        """NaN samples (rounds that produced no figure) are left out."""
        samples = [s for s in samples if not math.isnan(s)]
        if not samples:
            return cls(math.nan, math.nan, math.nan, 0)
        return cls(statistics.median(samples), min(samples), max(samples), len(samples))
