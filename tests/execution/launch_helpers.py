"""Workspaces and output collectors for the launcher tests (real git, real DVC)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from workers.dvcops import init_workspace
from workers.execution import StageProcess, StageSession, launch_stage, open_session, stage_environment

PIPELINE = "pipelines/exec/dvc.yaml"


def target(stage: str) -> str:
    return f"{PIPELINE}:{stage}"


def make_workspace(root: Path, stages: Mapping[str, Mapping[str, Any]], files: Mapping[str, str] = {}) -> Path:
    """A git+DVC workspace with ``files`` and a pipeline at PIPELINE whose stages work from the project root."""
    init_workspace(root, None)
    for name, text in files.items():
        (root / name).write_text(text)
    pipeline = root / PIPELINE
    pipeline.parent.mkdir(parents=True)
    pipeline.write_text(yaml.safe_dump({"stages": {name: {**spec, "wdir": "../.."} for name, spec in stages.items()}}))
    return root


def run_cli(root: Path, *args: str) -> str:
    """The DVC CLI, the oracle for what a launch should leave behind."""
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def read_lock(root: Path) -> Any:
    return yaml.safe_load((root / PIPELINE).with_name("dvc.lock").read_text())


@dataclass
class Collected:
    """Chunks handed to ``on_output``, with the loop time each arrived."""

    chunks: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    async def __call__(self, chunk: str) -> None:
        self.chunks.append(chunk)
        self.times.append(asyncio.get_running_loop().time())

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def arrival_of(self, needle: str) -> float:
        """When the text up to and including ``needle`` had arrived."""
        seen = ""
        for chunk, at in zip(self.chunks, self.times, strict=True):
            seen += chunk
            if needle in seen:
                return at
        raise AssertionError(f"{needle!r} never arrived in {self.text!r}")


async def until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {seconds} s"
        await asyncio.sleep(0.02)  # polling interval of a deadline-bounded wait


def live_members(pgid: int) -> list[int]:
    """Processes of the group that still run (zombies left for init to reap do not count)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[2] == str(pgid) and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return not live_members(pgid)


def process_gone(pid: int) -> bool:
    """Whether ``pid`` no longer runs (a zombie left for its parent or init to reap does not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return True
    return fields[0] == "Z"


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


async def opened(root: Path, files: tuple[str, ...] = (PIPELINE,)) -> StageSession:
    """A stage session on the workspace that read ``files``."""
    return await open_session(root, files, stage_environment())


class Launch(Protocol):
    async def __call__(
        self, root: Path, target: str, *, force: bool, on_output: Collected, env: Mapping[str, str] | None = None
    ) -> StageProcess: ...


@dataclass
class SessionLaunches:
    """``launch_stage`` with each stage forked from a stage session opened for it here, as a run opens one.

    A session serves one run, so every launch here opens a fresh one, as the next run would. Each launch checks the
    stage really came from its session.
    """

    sessions: list[StageSession] = field(default_factory=list)

    async def __call__(
        self, root: Path, target: str, *, force: bool, on_output: Collected, env: Mapping[str, str] | None = None
    ) -> StageProcess:
        session = await opened(root)
        self.sessions.append(session)
        process = await launch_stage(root, target, force=force, on_output=on_output, env=env, session=session)
        assert parent_of(process.pid) == session.pid, "the stage was not forked from its session"
        return process

    def close(self) -> None:
        for session in self.sessions:
            session.close()
