"""The benchmark harness's own arithmetic and report (the benchmarks themselves run in `make bench-smoke`)."""

from __future__ import annotations

import math

from bench.report import table
from bench.results import Row
from bench.stats import Summary, percentile


def test_percentiles_interpolate_between_ranks() -> None:
    samples = [float(v) for v in range(1, 101)]
    assert percentile(samples, 50) == 50.5
    assert math.isclose(percentile(samples, 99), 99.01)
    assert math.isnan(percentile([], 50))


def test_a_summary_is_the_median_with_its_range() -> None:
    summary = Summary.of([3.0, 1.0, 2.0, 10.0, 4.0])
    assert (summary.median, summary.low, summary.high, summary.count) == (3.0, 1.0, 10.0, 5)


def test_ratios_meet_their_targets_in_the_right_direction() -> None:
    faster = Row.compared(
        "x", Summary.of([30.0]), Summary.of([100.0]), "ms", target="≤ 0.35x", limit=0.35, higher=False
    )
    slower = Row.compared(
        "y", Summary.of([40.0]), Summary.of([100.0]), "ms", target="≤ 0.35x", limit=0.35, higher=False
    )
    throughput = Row.compared(
        "z", Summary.of([20.0]), Summary.of([100.0]), "req/s", target="≥ 0.15x", limit=0.15, higher=True
    )
    assert faster.met and not slower.met and throughput.met
    rendered = table([faster, slower, throughput])
    assert "| x | 30 ms | 100 ms | 0.30x | ≤ 0.35x | yes |" in rendered
    assert "| y | 40 ms | 100 ms | 0.40x | ≤ 0.35x | **no** |" in rendered


def test_fanout_load_processes_are_merged_into_one_summary() -> None:
    from bench.fanout_bench import _shares
    from bench.fanout_load import summary

    assert _shares(200, 4) == [50, 50, 50, 50] and _shares(7, 3) == [3, 2, 2] and _shares(1, 4) == [1]
    go = 100.0
    first = {
        "samples": [(99.0, 99.5), (100.0, 100.010), (101.0, 101.020)],
        "events": [(1, 99.0), (2, 100.0), (3, 101.0)],
        "log_seqs": [2, 3],
        "received": [3],
        "messages": [2],
        "completed": 1,
        "final_state": "SUCCEEDED",
    }
    second = first | {"samples": [(100.0, 100.030), (101.0, 101.040)], "received": [2], "messages": [1]}
    merged = summary([first, second], go, 2)
    # Events produced before go are not counted; latencies from both processes are.
    assert merged["deliveries"] == 4 and merged["completed"] == 2 and merged["final_state"] == "SUCCEEDED"
    assert math.isclose(merged["max_ms"], 40.0, abs_tol=1e-6) and math.isclose(merged["p50_ms"], 25.0, abs_tol=1e-6)
    assert merged["rate"] == 2.0 and (merged["received_min"], merged["received_max"]) == (2, 3)
