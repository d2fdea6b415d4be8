"""The stage server behind launch_stage: restarted when it dies (the next launch waits for the new one), many stages at
once, its warm-up.

Stages run through the server here (conftest.py waits for it to be ready before each test).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from launch_helpers import (
    PIPELINE,
    Collected,
    group_gone,
    make_workspace,
    parent_of,
    process_gone,
    read_lock,
    run_cli,
    target,
    until,
)

from workers.execution import launch_stage
from workers.execution.server import SERVER_SCRIPT, server_pid


async def test_server_restarts_after_being_killed(tmp_path: Path) -> None:
    root = make_workspace(
        tmp_path / "ws",
        {
            "slow": {"cmd": "echo started; sh -c 'sleep 60 & sleep 60'"},
            "quick": {"cmd": "echo quick > quick.txt", "outs": ["quick.txt"]},
        },
    )
    output = Collected()
    process = await launch_stage(root, target("slow"), force=False, on_output=output)
    await until(lambda: "started" in output.text.splitlines(), 20, "the command's first line")
    first_server = server_pid()
    # The stage is forked from its session, which is forked from the server.
    assert first_server is not None and parent_of(parent_of(process.pid)) == first_server

    os.kill(first_server, signal.SIGKILL)
    # The stage dies with its server, grandchildren included, and its end is reported.
    async with asyncio.timeout(10):
        result = await process.wait()
    assert result.exit_code != 0 and result.command_ran
    await until(lambda: group_gone(process.pid), 5, "the stage's group gone")

    # The next launch starts a new server and waits until it is ready: no stage runs any other way.
    quick_output = Collected()
    quick = await launch_stage(root, target("quick"), force=False, on_output=quick_output)
    second_server = server_pid()
    assert second_server is not None and second_server != first_server
    assert parent_of(parent_of(quick.pid)) == second_server
    quick_result = await quick.wait()
    assert quick_result.exit_code == 0 and quick_result.command_ran, quick_output.text
    assert (root / "quick.txt").read_text() == "quick\n"
    assert process_gone(first_server)

    # And again through the same new server.
    again_output = Collected()
    again = await launch_stage(root, target("quick"), force=True, on_output=again_output)
    assert parent_of(parent_of(again.pid)) == second_server
    again_result = await again.wait()
    assert again_result.exit_code == 0 and again_result.command_ran, again_output.text


def sleeper(index: int) -> dict[str, object]:
    return {
        "cmd": f"date +%s.%N > w{index}.start; sleep 1; echo {index} > w{index}.out; date +%s.%N > w{index}.end",
        "deps": [f"w{index}.in"],
        "outs": [f"w{index}.out"],
    }


async def test_many_stages_at_once_all_complete_correctly(tmp_path: Path) -> None:
    count = 8
    root = make_workspace(
        tmp_path / "ws",
        {f"w{index}": sleeper(index) for index in range(count)},
        {f"w{index}.in": f"{index}\n" for index in range(count)},
    )
    oracle = tmp_path / "oracle"
    shutil.copytree(root, oracle, symlinks=True)

    outputs = [Collected() for _ in range(count)]
    processes = await asyncio.gather(
        *(launch_stage(root, target(f"w{index}"), force=False, on_output=outputs[index]) for index in range(count))
    )
    oracle_run = asyncio.create_task(asyncio.to_thread(run_cli, oracle, "repro", PIPELINE))
    results = await asyncio.gather(*(process.wait() for process in processes))
    await oracle_run

    assert len({process.pid for process in processes}) == count
    for index, (result, output) in enumerate(zip(results, outputs, strict=True)):
        assert result.exit_code == 0 and result.command_ran and result.skip_reason is None, output.text
        assert f"Running stage 'pipelines/exec/dvc.yaml:w{index}':" in output.text
        assert result.cpu_seconds is not None and result.peak_memory_bytes is not None
        assert (root / f"w{index}.out").read_text() == f"{index}\n"
    # Side by side, not one after the other.
    spans = [(float((root / f"w{i}.start").read_text()), float((root / f"w{i}.end").read_text())) for i in range(count)]
    assert any(a[0] < b[1] and b[0] < a[1] for a, b in itertools.combinations(spans, 2)), spans
    assert read_lock(root) == read_lock(oracle)
    for process in processes:
        assert group_gone(process.pid)


def test_server_warms_up_what_a_reproduction_imports_and_stays_single_threaded() -> None:
    # The rehearsal finds what reproducing a stage imports; a DVC upgrade that breaks it shows here first (the server
    # would still work, only slower).
    probe = (
        "import sys, threading; sys.path.insert(0, sys.argv[1]); import stage_server; stage_server.prepare_process();"
        " print(stage_server.warm_up(), threading.active_count(), 'dvc.repo.reproduce' in sys.modules,"
        " 'dvc.stage.run' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-P", "-c", probe, str(SERVER_SCRIPT.parent)], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["[]", "1", "True", "True"], result.stdout + result.stderr
