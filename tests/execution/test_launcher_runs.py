"""A stage that runs, one that is skipped, one that is forced, one that fails: results and output.

Each test runs twice: a stage forked from a session opened for it alone, and one forked from a session opened as a run
opens it (stage_server.py); both must give the CLI's results, output and dvc.lock.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from launch_helpers import Collected, Launch, make_workspace, target

MiB = 1024 * 1024
# Touch every page (a fresh bytearray is mapped zero pages, not resident), then spin for 0.3 s of CPU.
ALLOCATE_AND_SPIN = """\
import time
b = bytearray(64 * 1024 * 1024)
b[::4096] = b"x" * (len(b) // 4096)
start = time.process_time()
while time.process_time() - start < 0.3:
    pass
print("allocated", len(b))
"""


async def test_measured_stages_then_skipped_then_forced(tmp_path: Path, launch: Launch) -> None:
    root = make_workspace(
        tmp_path / "ws",
        {
            "big": {"cmd": "python3 spin.py > big.txt && cat big.txt", "deps": ["spin.py"], "outs": ["big.txt"]},
            "small": {"cmd": "echo small > small.txt", "deps": ["in.txt"], "outs": ["small.txt"]},
        },
        {"in.txt": "input\n", "spin.py": ALLOCATE_AND_SPIN},
    )
    big_output, small_output = Collected(), Collected()
    big = await launch(root, target("big"), force=False, on_output=big_output)
    small = await launch(root, target("small"), force=False, on_output=small_output)
    assert big.pid != small.pid
    big_result, small_result = await asyncio.gather(big.wait(), small.wait())

    assert big_result.exit_code == 0, big_output.text
    assert big_result.command_ran and big_result.skip_reason is None
    assert "Running stage 'pipelines/exec/dvc.yaml:big':" in big_output.text
    assert "> python3 spin.py > big.txt && cat big.txt" in big_output.text
    assert "allocated 67108864" in big_output.text
    assert big_result.peak_memory_bytes is not None and 60 * MiB <= big_result.peak_memory_bytes < 200 * MiB
    # The command's own CPU, not DVC's (DVC's start-up alone takes well over 0.3 s of CPU).
    assert big_result.cpu_seconds is not None and 0.3 <= big_result.cpu_seconds < 1.5

    assert small_result.exit_code == 0 and small_result.command_ran, small_output.text
    assert small_result.peak_memory_bytes is not None and small_result.peak_memory_bytes < 20 * MiB
    assert small_result.cpu_seconds is not None and small_result.cpu_seconds < 0.1
    assert (root / "small.txt").read_text() == "small\n"

    again = Collected()
    skipped = await (await launch(root, target("small"), force=False, on_output=again)).wait()
    assert skipped.exit_code == 0 and not skipped.command_ran, again.text
    assert skipped.skip_reason == "Stage 'pipelines/exec/dvc.yaml:small' didn't change, skipping"
    assert skipped.peak_memory_bytes is None and skipped.cpu_seconds is None

    forced_output = Collected()
    forced = await (await launch(root, target("small"), force=True, on_output=forced_output)).wait()
    assert forced.exit_code == 0 and forced.command_ran and forced.skip_reason is None, forced_output.text
    assert "Running stage 'pipelines/exec/dvc.yaml:small':" in forced_output.text


async def test_output_restored_from_run_cache(tmp_path: Path, launch: Launch) -> None:
    root = make_workspace(
        tmp_path / "ws",
        {"copy": {"cmd": "cp in.txt out.txt", "deps": ["in.txt"], "outs": ["out.txt"]}},
        {"in.txt": "input\n"},
    )
    assert (await (await launch(root, target("copy"), force=False, on_output=Collected())).wait()).command_ran
    (root / "out.txt").unlink()

    output = Collected()
    restored = await (await launch(root, target("copy"), force=False, on_output=output)).wait()
    assert restored.exit_code == 0 and not restored.command_ran, output.text
    assert restored.skip_reason == (
        "Stage 'pipelines/exec/dvc.yaml:copy' is cached - skipping run, checking out outputs"
    )
    assert (root / "out.txt").read_text() == "input\n"


async def test_failing_command_streams_while_running(tmp_path: Path, launch: Launch) -> None:
    root = make_workspace(tmp_path / "ws", {"fail": {"cmd": "echo before-failure; sleep 0.6; exit 3"}})
    output = Collected()
    process = await launch(root, target("fail"), force=False, on_output=output)
    result = await process.wait()
    ended = asyncio.get_running_loop().time()

    assert result.exit_code != 0 and result.command_ran
    assert result.skip_reason is None
    assert "failed to run: echo before-failure; sleep 0.6; exit 3, exited with 3" in output.text
    # Handed over as it was printed, not when the process ended.
    assert ended - output.arrival_of("before-failure") > 0.4


async def test_stdout_and_stderr_keep_their_order(tmp_path: Path, launch: Launch) -> None:
    root = make_workspace(tmp_path / "ws", {"mix": {"cmd": "sh -c 'echo a; echo b >&2; echo c'"}})
    output = Collected()
    result = await (await launch(root, target("mix"), force=False, on_output=output)).wait()
    assert result.exit_code == 0, output.text
    lines = output.text.splitlines()
    command_lines = [line for line in lines if line in {"a", "b", "c"}]
    assert command_lines == ["a", "b", "c"], lines
    assert lines.index("> sh -c 'echo a; echo b >&2; echo c'") < lines.index("a")
    assert all(chunk.endswith("\n") for chunk in output.chunks)
