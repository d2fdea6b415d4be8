"""Start the real stack for end-to-end tests: uvicorn serving app.main and an arq worker.

MongoDB and Redis come from MONGODB_URL / REDIS_URL (``make test`` starts FerretDB and redis-server).
Each test session gets its own database, queue and workspace root, so runs never see each other.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
START_DEADLINE_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def session_env(workspace_root: Path, **overrides: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    env = dict(os.environ)
    env.setdefault("MONGODB_URL", "mongodb://127.0.0.1:27017")
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379")
    env |= {
        "MONGODB_DATABASE": f"test_{tag}",
        "ARQ_QUEUE": f"test:{tag}",
        "WORKSPACE_ROOT": str(workspace_root),
        "DVC_NO_ANALYTICS": "1",
        "LOG_LEVEL": "INFO",
        # The periodic jobs' lines too: a failing test prints the worker's log, and the reaper's rounds are in it.
        "LOG_ROUTINE_JOBS": "true",
        "ALLOWED_LOCAL_REPOSITORY_ROOTS": os.environ.get("TMPDIR", "/tmp"),  # the tests' local repositories
    }
    env |= overrides
    return env


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def spawn(name: str, args: list[str], env: Mapping[str, str], log_dir: Path) -> Process:
    log = log_dir / f"{name}.log"
    handle = log.open("ab")
    popen = subprocess.Popen(
        args, cwd=ROOT, env=dict(env), stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )
    handle.close()
    return Process(name=name, popen=popen, log=log)


def start_worker(env: Mapping[str, str], log_dir: Path, name: str = "worker") -> Process:
    return spawn(name, [sys.executable, "-m", "workers"], env, log_dir)


def start_api(env: Mapping[str, str], log_dir: Path, port: int, name: str = "api") -> Process:
    args = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)]
    return spawn(name, [*args, "--log-level", "warning", "--ws-per-message-deflate", "false"], env, log_dir)


def wait_until_healthy(base_url: str, processes: list[Process], *, need_worker: bool = True) -> None:
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    last = "no answer"
    while time.monotonic() < deadline:
        for process in processes:
            if process.popen.poll() is not None:
                raise RuntimeError(f"{process.name} exited during start-up:\n{process.log_tail()}")
        try:
            response = httpx.get(f"{base_url}/health", timeout=2)
            body = response.json()
            last = str(body)
            if body["status"] == "ok" or (not need_worker and "no worker" in str(body)):
                return
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.1)  # polling interval of a deadline-bounded wait
    logs = "\n".join(f"--- {p.name}\n{p.log_tail()}" for p in processes)
    raise RuntimeError(f"stack not healthy after {START_DEADLINE_SECONDS}s: {last}\n{logs}")


@dataclass
class Stack:
    base_url: str
    env: dict[str, str]
    api: Process
    worker: Process
    log_dir: Path


@contextmanager
def running_stack(workspace_root: Path, log_dir: Path, **overrides: str) -> Iterator[Stack]:
    env = session_env(workspace_root, **overrides)
    port = free_port()
    worker = start_worker(env, log_dir)
    api = start_api(env, log_dir, port)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base_url, [api, worker])
        yield Stack(base_url=base_url, env=env, api=api, worker=worker, log_dir=log_dir)
    finally:
        api.stop()
        worker.stop()
