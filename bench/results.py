"""One line of the results table, built from measured summaries."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.stats import Summary


def figure(value: float, unit: str) -> str:
    if math.isnan(value):
        return "n/a"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "ms":
        return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"
    if unit == "req/s":
        return f"{value:,.0f} req/s"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:g} {unit}"


def summary_text(summary: Summary, unit: str) -> str:
    if summary.count <= 1:
        return figure(summary.median, unit)
    return f"{figure(summary.median, unit)} ({figure(summary.low, unit)}-{figure(summary.high, unit)})"


@dataclass(frozen=True, slots=True)
class Row:
    benchmark: str
    ours: str
    baseline: str
    ratio: float | None
    target: str
    met: bool
    notes: list[str] = field(default_factory=list)

    @classmethod
    def compared(
        cls, benchmark: str, ours: Summary, baseline: Summary, unit: str, *, target: str, limit: float, higher: bool
    ) -> Row:
        """A figure against its same-run baseline; met when the ratio is <= ``limit`` (>= when ``higher``)."""
        ratio = ours.median / baseline.median if baseline.median else math.nan
        met = ratio >= limit if higher else ratio <= limit
        return cls(benchmark, summary_text(ours, unit), summary_text(baseline, unit), ratio, target, met)

    @classmethod
    def absolute(cls, benchmark: str, ours: str, *, target: str, met: bool) -> Row:
        return cls(benchmark, ours, "—", None, target, met)

    def with_notes(self, *notes: str) -> Row:
        return Row(self.benchmark, self.ours, self.baseline, self.ratio, self.target, self.met, [*self.notes, *notes])
