"""The reliability report: tests record each fault and bad input they tried and what they observed.

A full `make test` run rewrites docs/reliability.md from these records, so the report says what
the tests saw, not what someone remembers. A row is kept only when the test that recorded it passed
(tests/conftest.py tells which did); a test that failed after recording leaves its rows out, and the
report lists it as failed instead. The content has no timestamps: it only changes when behaviour does.
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
    test: str = ""
    """The test that observed it (pytest node id)."""


@dataclass
class ReliabilityLog:
    observations: list[Observation] = field(default_factory=list)
    passed: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    current_test: str = ""

    def record(self, category: str, name: str, *, tried: str, observed: str) -> None:
        self.observations.append(Observation(category, name, tried, observed, self.current_test))

    def kept(self) -> list[Observation]:
        """The observations of tests that passed."""
        return [o for o in self.observations if o.test in self.passed]

    def render(self) -> str:
        lines = [
            "# Reliability report",
            "",
            "Written by the test suite (`make test`, `tests/reliability.py`) from what the tests observed against",
            "the real stack: FerretDB, Redis, arq workers, uvicorn and DVC. Each row is one fault or bad input.",
            "",
        ]
        kept = self.kept()
        for category in sorted({o.category for o in kept}):
            lines += [f"## {category}", "", "| case | what was tried | observed outcome |", "|---|---|---|"]
            for o in sorted(o for o in kept if o.category == category):
                lines.append(f"| {_cell(o.name)} | {_cell(o.tried)} | {_cell(o.observed)} |")
            lines.append("")
        unreported = sorted({o.test for o in self.observations if o.test not in self.passed})
        if unreported:
            lines += ["## Failed: no observation reported", ""]
            lines += [f"- `{test}`" for test in unreported]
            lines.append("")
        return "\n".join(lines)

    def write(self) -> None:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(self.render())


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
