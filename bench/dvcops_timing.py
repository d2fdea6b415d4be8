"""In-process DVC operations against the CLI on the same workspace, without the service around them.

    python -m bench.dvcops_timing [STAGES ...]

Isolates what workers/dvcops costs from the queue and HTTP: status and the dry-run plan of a chain
of STAGES stages (default 50 and 200), median of 3, beside `dvc status --json` and `dvc repro --dry`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ["DVC_NO_ANALYTICS"] = "1"

from app.domain.pipelines import StageSpec
from workers import dvcops

PIPELINE = "pipelines/chain/dvc.yaml"
ROUNDS = 3


def median_seconds(action: Callable[[], object]) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def cli(root: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, check=True, capture_output=True)


def chain(stages: int) -> Path:
    root = Path(tempfile.mkdtemp(prefix="dvcops-timing-")) / "workspace"
    dvcops.init_workspace(root, None)
    (root / "f0.txt").write_text("x")
    specs = [
        StageSpec(name=f"s{i}", cmd=f"cp f{i}.txt f{i + 1}.txt", deps=[f"f{i}.txt"], outs=[f"f{i + 1}.txt"])
        for i in range(stages)
    ]
    dvcops.write_pipeline(root, PIPELINE, specs)
    cli(root, "repro", PIPELINE)
    return root


def measure(stages: int) -> str:
    root = chain(stages)
    status = median_seconds(lambda: dvcops.pipeline_status(root, PIPELINE))
    status_cli = median_seconds(lambda: cli(root, "status", "--json", PIPELINE))
    (root / "f0.txt").write_text("changed")
    plan = median_seconds(lambda: dvcops.dry_run_plan(root, PIPELINE, force=False, targets=[], downstream=False))
    plan_cli = median_seconds(lambda: cli(root, "repro", "--dry", PIPELINE))
    return (
        f"{stages} stages: status {status * 1000:.0f} ms vs `dvc status --json` {status_cli * 1000:.0f} ms "
        f"({status / status_cli:.2f}x); plan {plan * 1000:.0f} ms vs `dvc repro --dry` {plan_cli * 1000:.0f} ms "
        f"({plan / plan_cli:.2f}x)"
    )


def main(argv: list[str]) -> None:
    for stages in [int(a) for a in argv] or [50, 200]:
        print(measure(stages))


if __name__ == "__main__":
    main(sys.argv[1:])
