"""Timings of the stage launcher (not a test): `python tests/execution/measure_launcher.py [ROUNDS]` from the repo root.

For the launcher (stages forked from a session of the stage server) and the DVC CLI:
- one trivial forced stage, launch to result (median of ROUNDS, after one warm-up launch);
- a 10-stage chain of trivial commands, each launched after the previous one ended;
- 8 independent `sleep 1` stages launched at once, then a final stage that needs them all.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[2]))

from launch_helpers import PIPELINE, make_workspace, target

from workers.execution import launch_stage
from workers.execution.server import wait_for_stage_server

CHAIN = 10
PARALLEL = 8


async def ignore(chunk: str) -> None:
    pass


async def run(root: Path, stage: str, force: bool = False) -> None:
    result = await (await launch_stage(root, target(stage), force=force, on_output=ignore)).wait()
    assert result.exit_code == 0, (stage, result)


def cli(root: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, check=True, capture_output=True)


def chain_stages() -> dict[str, Any]:
    stages: dict[str, Any] = {"s0": {"cmd": "echo 0 > s0.txt", "outs": ["s0.txt"]}}
    for i in range(1, CHAIN):
        stages[f"s{i}"] = {"cmd": f"cat s{i - 1}.txt > s{i}.txt", "deps": [f"s{i - 1}.txt"], "outs": [f"s{i}.txt"]}
    return stages


def fan_stages() -> dict[str, Any]:
    stages: dict[str, Any] = {
        f"p{i}": {"cmd": f"sleep 1; echo {i} > p{i}.txt", "outs": [f"p{i}.txt"]} for i in range(PARALLEL)
    }
    stages["final"] = {
        "cmd": "cat " + " ".join(f"p{i}.txt" for i in range(PARALLEL)) + " > final.txt",
        "deps": [f"p{i}.txt" for i in range(PARALLEL)],
        "outs": ["final.txt"],
    }
    return stages


async def timed(action: Callable[[], Awaitable[None]]) -> float:
    began = time.perf_counter()
    await action()
    return time.perf_counter() - began


async def measure(base: Path, rounds: int, mode: str) -> dict[str, float]:
    figures: dict[str, float] = {}
    single = make_workspace(base / f"single-{mode}", {"t": {"cmd": "true"}})
    if mode == "cli":
        single_run: Callable[[], Awaitable[None]] = lambda: asyncio.to_thread(  # noqa: E731
            cli, single, "repro", "--single-item", "--force", target("t")
        )
    else:
        single_run = lambda: run(single, "t", force=True)  # noqa: E731
    await single_run()
    figures["single stage, median"] = statistics.median([await timed(single_run) for _ in range(rounds)])

    chains = []
    for round_ in range(rounds):
        root = make_workspace(base / f"chain-{mode}-{round_}", chain_stages())
        if mode == "cli":
            chains.append(await timed(lambda root=root: asyncio.to_thread(cli, root, "repro", PIPELINE)))  # type: ignore[misc]
        else:

            async def sequence(root: Path = root) -> None:
                for i in range(CHAIN):
                    await run(root, f"s{i}")

            chains.append(await timed(sequence))
    figures[f"{CHAIN}-stage chain, median"] = statistics.median(chains)

    fans = []
    for round_ in range(max(1, rounds // 2)):
        root = make_workspace(base / f"fan-{mode}-{round_}", fan_stages())
        if mode == "cli":
            fans.append(await timed(lambda root=root: asyncio.to_thread(cli, root, "repro", PIPELINE)))  # type: ignore[misc]
        else:

            async def fan(root: Path = root) -> None:
                await asyncio.gather(*(run(root, f"p{i}") for i in range(PARALLEL)))
                await run(root, "final")

            fans.append(await timed(fan))
    figures[f"{PARALLEL} x sleep 1 + final, median"] = statistics.median(fans)
    return figures


async def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    base = Path(tempfile.mkdtemp(prefix="measure-launcher-"))
    results: dict[str, dict[str, float]] = {}
    try:
        for mode in ("server", "cli"):
            if mode == "server":
                assert await wait_for_stage_server(60)
            results[mode] = await measure(base, rounds, mode)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"{'':32}" + "".join(f"{mode:>12}" for mode in results))
    for figure in results["cli"]:
        print(f"{figure:32}" + "".join(f"{results[mode][figure]:11.3f}s" for mode in results))


if __name__ == "__main__":
    asyncio.run(main())
