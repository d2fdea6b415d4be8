"""Stopping a stage: the whole group goes within 2 s, and the workspace stays usable."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from launch_helpers import Collected, Launch, group_gone, live_members, make_workspace, target, until

from workers.execution import stage_environment


@pytest.mark.parametrize(
    "command",
    [
        "echo started; sleep $STAGE_SLEEP; echo done > out.txt",
        # Grandchildren: a background sleep beside the foreground one.
        "echo started; sh -c 'sleep $STAGE_SLEEP & sleep $STAGE_SLEEP'; echo done > out.txt",
    ],
    ids=["child", "grandchildren"],
)
async def test_stop_takes_the_group_down_and_releases_the_workspace(
    tmp_path: Path, command: str, launch: Launch
) -> None:
    root = make_workspace(tmp_path / "ws", {"slow": {"cmd": command, "outs": ["out.txt"]}})
    output = Collected()
    process = await launch(
        root, target("slow"), force=False, on_output=output, env=stage_environment({"STAGE_SLEEP": "60"})
    )
    await until(lambda: "started" in output.text.splitlines(), 20, "the stage's first line")
    sleeps = len(live_members(process.pid))
    assert sleeps >= 4  # dvc, the stage shell, sh, sleep (and more for the grandchildren)

    loop = asyncio.get_running_loop()
    started = loop.time()
    await process.stop()
    assert loop.time() - started < 2.0
    assert group_gone(process.pid)
    await process.stop()  # idempotent
    result = await process.wait()
    assert result.exit_code != 0
    assert result.command_ran
    assert not (root / "out.txt").exists()

    # DVC's lock is free and the stage can run again (this time without the long sleep).
    rerun_output = Collected()
    rerun = await launch(
        root, target("slow"), force=False, on_output=rerun_output, env=stage_environment({"STAGE_SLEEP": "0"})
    )
    rerun_result = await rerun.wait()
    assert rerun_result.exit_code == 0 and rerun_result.command_ran, rerun_output.text
    assert (root / "out.txt").read_text() == "done\n"
