"""What a stage command sees (a clean environment) and what survives the worker (nothing)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest
from launch_helpers import Collected, group_gone, make_workspace, process_gone, target, until

from workers.execution import launch_stage

WORKER_SECRETS = {
    "MONGODB_URL": "mongodb://user:secret@db/x",
    "REDIS_URL": "redis://:secret@redis/0",
    "GITHUB_TOKEN": "ghp-secret",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "SOME_PASSWORD_FILE": "/run/secret",
}


async def test_command_sees_a_clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in WORKER_SECRETS.items():
        monkeypatch.setenv(name, value)
    root = make_workspace(tmp_path / "ws", {"env": {"cmd": "env; echo python3=$(command -v python3)"}})
    output = Collected()
    result = await (await launch_stage(root, target("env"), force=False, on_output=output)).wait()
    assert result.exit_code == 0, output.text

    variables = dict(line.split("=", 1) for line in output.text.splitlines() if "=" in line and " " not in line)
    assert not set(WORKER_SECRETS) & set(variables), variables
    assert "secret" not in output.text
    assert variables["DVC_NO_ANALYTICS"] == "1"
    # In its sandbox (workers/sandbox/): a private HOME, the system's interpreter, not the worker's.
    assert variables["HOME"] == "/home/stage"
    assert variables["python3"] == "/usr/bin/python3"
    # The command runs in /bin/sh and never sees the stage shell's plumbing.
    assert variables["SHELL"] == "/bin/sh"
    assert "STAGE_RUSAGE_FILE" not in variables and "STAGE_PROCESS_GROUP" not in variables


LAUNCHER = """
import asyncio, sys
from pathlib import Path
from workers.execution import launch_stage
from workers.execution.server import server_pid, wait_for_stage_server

async def main():
    assert await wait_for_stage_server(60)
    async def forward(chunk):
        sys.stdout.write(chunk)
        sys.stdout.flush()
    process = await launch_stage(Path(sys.argv[1]), sys.argv[2], force=False, on_output=forward)
    print("PGID", process.pid, flush=True)
    print("SERVER", server_pid(), flush=True)
    await process.wait()

asyncio.run(main())
"""


async def test_stage_dies_with_its_worker(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws", {"orphan": {"cmd": "sh -c 'sleep 60 & echo command-started; sleep 60'"}})
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LAUNCHER,
        str(root),
        target("orphan"),
        cwd=Path(__file__).parents[2],
        # Its stage shell's folder, which a SIGKILLed worker cannot remove, goes with the test's.
        env={**os.environ, "TMPDIR": str(tmp_path)},
        stdout=asyncio.subprocess.PIPE,
    )
    assert worker.stdout is not None
    pgid = server = None
    try:
        async with asyncio.timeout(20):
            while True:
                line = (await worker.stdout.readline()).decode()
                assert line, "the launcher ended early"
                if line.startswith("PGID "):
                    pgid = int(line.split()[1])
                if line.startswith("SERVER "):
                    server = int(line.split()[1])
                if line.strip() == "command-started":
                    break
        assert pgid is not None and not group_gone(pgid)
        # The stage runs in a child of the worker's stage server, which must go too.
        assert server is not None and not process_gone(server)
    finally:
        worker.kill()
        await worker.wait()
    assert worker.returncode == -signal.SIGKILL

    try:
        await until(
            lambda: group_gone(pgid) and process_gone(server),
            5,
            f"process group {pgid} and stage server {server} gone with their worker",
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
