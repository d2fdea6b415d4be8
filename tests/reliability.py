"""The reliability report: tests record each fault and bad input they tried and what they observed.

A full `make test` run rewrites docs/reliability.md from these records, so the report says what
the tests saw, not what someone remembers. The content has no timestamps: it only changes when
behaviour does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

REPORT = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"


@dataclass(frozen=True, order=True)
class Observation:
    category: str
    name: str
    tried: str
    observed: str


@dataclass
class ReliabilityLog:
    observations: list[Observation] = field(default_factory=list)

    def record(self, category: str, name: str, *, tried: str, observed: str) -> None:
        self.observations.append(Observation(category, name, tried, observed))

    def render(self) -> str:
        lines = [
            "# Reliability report",
            "",
            "Written by the test suite (`make test`, `tests/reliability.py`) from what the tests observed against",
            "the real stack: FerretDB, Redis, arq workers, uvicorn and DVC. Each row is one fault or bad input.",
            "",
        ]
        for category in sorted({o.category for o in self.observations}):
            lines += [f"## {category}", "", "| case | what was tried | observed outcome |", "|---|---|---|"]
            for o in sorted(o for o in self.observations if o.category == category):
                lines.append(f"| {_cell(o.name)} | {_cell(o.tried)} | {_cell(o.observed)} |")
            lines.append("")
        return "\n".join(lines)

    def write(self) -> None:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(self.render())


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
