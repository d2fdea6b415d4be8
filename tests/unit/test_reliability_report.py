"""docs/reliability.md keeps only what passing tests observed."""

from __future__ import annotations

from tests.reliability import ReliabilityLog


def test_rows_of_failed_tests_are_left_out_and_listed() -> None:
    log = ReliabilityLog()
    log.current_test = "tests/a.py::test_ok"
    log.record("Faults", "ok case", tried="tried A", observed="saw A")
    log.current_test = "tests/a.py::test_broken"
    log.record("Faults", "broken case", tried="tried B", observed="claimed B")
    log.passed.add("tests/a.py::test_ok")

    report = log.render()

    assert "| ok case | tried A | saw A |" in report
    assert "claimed B" not in report
    assert "- `tests/a.py::test_broken`" in report
