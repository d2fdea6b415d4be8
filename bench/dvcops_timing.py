"""In-process DVC operations against the CLI on the same workspace, without the service around them.

    python -m bench.dvcops_timing [STAGES ...]

Isolates what workers/dvcops costs from the queue and HTTP: status and the dry-run plan of a chain
of STAGES stages (default 50 and 200), median of 3, beside `dvc status --json` and `dvc repro --dry`.
"warm" is what a worker answers (its WarmRepos already holds the workspace's Repo and index), "cold"
a Repo opened for the call (a worker's first call, or the first after a run or a pipeline write).
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
from typing import Any

os.environ["DVC_NO_ANALYTICS"] = "1"

from app.domain.pipelines import StageSpec
from workers import dvcops

PIPELINE = "pipelines/chain/dvc.yaml"
ROUNDS = 3
PLAIN_REPRO: dict[str, Any] = {"force": False, "targets": [], "downstream": False}


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
    repos = dvcops.WarmRepos()
    try:
        # The CLI goes first: its rounds also let the new files settle, as WarmRepos needs to reuse a Repo.
        status_cli = median_seconds(lambda: cli(root, "status", "--json", PIPELINE))
        status_cold = median_seconds(lambda: dvcops.pipeline_status(root, PIPELINE))
        dvcops.pipeline_status(root, PIPELINE, repos)  # warm-up: opens the Repo and builds its index
        status = median_seconds(lambda: dvcops.pipeline_status(root, PIPELINE, repos))
        (root / "f0.txt").write_text("changed")
        plan_cli = median_seconds(lambda: cli(root, "repro", "--dry", PIPELINE))
        plan_cold = median_seconds(lambda: dvcops.dry_run_plan(root, PIPELINE, **PLAIN_REPRO))
        plan = median_seconds(lambda: dvcops.dry_run_plan(root, PIPELINE, **PLAIN_REPRO, repos=repos))
    finally:
        repos.close()
    return (
        f"{stages} stages: status warm {status * 1000:.0f} ms ({status / status_cli:.2f}x), "
        f"cold {status_cold * 1000:.0f} ms ({status_cold / status_cli:.2f}x) vs `dvc status --json` "
        f"{status_cli * 1000:.0f} ms; plan warm {plan * 1000:.0f} ms ({plan / plan_cli:.2f}x), "
        f"cold {plan_cold * 1000:.0f} ms ({plan_cold / plan_cli:.2f}x) vs `dvc repro --dry` {plan_cli * 1000:.0f} ms"
    )


def main(argv: list[str]) -> None:
    for stages in [int(a) for a in argv] or [50, 200]:
        print(measure(stages))


if __name__ == "__main__":
    main(sys.argv[1:])
