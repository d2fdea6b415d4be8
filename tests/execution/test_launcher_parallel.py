"""Independent stages of one dvc.yaml run side by side and leave dvc.lock as a sequential `dvc repro` does."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from launch_helpers import PIPELINE, Collected, make_workspace, read_lock, run_cli, target

from workers.execution import launch_stage


def timed_stage(name: str) -> dict[str, object]:
    # Each command records when it ran, outside its outputs, so the test can see the two overlap. DVC's own CLI polls
    # its busy repository lock every 0.5 s, so there the second command starts 0.5 s or 1 s late; in a stage child the
    # lock is polled every 10 ms, so the second starts once the first one's pre-command step released the lock.
    return {
        "cmd": f"date +%s.%N > {name}.start; sleep 1.5; tr a-z A-Z < {name}.in > {name}.out; date +%s.%N > {name}.end",
        "deps": [f"{name}.in"],
        "outs": [f"{name}.out"],
    }


async def test_independent_stages_overlap_and_lock_matches_cli(tmp_path: Path) -> None:
    root = make_workspace(
        tmp_path / "ws",
        {"left": timed_stage("left"), "right": timed_stage("right")},
        {"left.in": "left\n", "right.in": "right\n"},
    )
    oracle = tmp_path / "oracle"
    shutil.copytree(root, oracle, symlinks=True)

    loop = asyncio.get_running_loop()
    began = loop.time()
    outputs = {name: Collected() for name in ("left", "right")}
    processes = [
        await launch_stage(root, target(name), force=False, on_output=output) for name, output in outputs.items()
    ]
    # The oracle, a plain sequential `dvc repro` of the same pipeline in a copy, runs meanwhile to save time.
    oracle_run = asyncio.create_task(asyncio.to_thread(run_cli, oracle, "repro", PIPELINE))
    results = await asyncio.gather(*(process.wait() for process in processes))
    elapsed = loop.time() - began
    await oracle_run

    for result, output in zip(results, outputs.values(), strict=True):
        assert result.exit_code == 0 and result.command_ran, output.text
    spans = {
        name: (float((root / f"{name}.start").read_text()), float((root / f"{name}.end").read_text()))
        for name in outputs
    }
    overlap = min(end for _, end in spans.values()) - max(start for start, _ in spans.values())
    # Overlapping by most of their 1.5 s: the second command started well under DVC's 0.5 s lock poll late.
    assert overlap > 1.0, spans
    # Sequentially the commands alone would take 3 s, on top of two DVC runs of about 1 s each.
    assert elapsed < 3 + 2, elapsed

    assert read_lock(root) == read_lock(oracle)
    assert (root / "left.out").read_text() == "LEFT\n" and (root / "right.out").read_text() == "RIGHT\n"
