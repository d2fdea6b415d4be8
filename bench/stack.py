"""The real stack for benchmarks: uvicorn (production settings) serving app.main, one arq worker, the baseline app.

MongoDB and Redis come from MONGODB_URL / REDIS_URL (the Makefile wraps the harness in .ci/with-services.sh).
Each benchmark run gets its own database, queue and workspace root.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.stack import Process, free_port, session_env, spawn, wait_until_healthy

ROOT = Path(__file__).resolve().parent.parent
START_DEADLINE_SECONDS = 60.0


def bench_env(workspace_root: Path) -> dict[str, str]:
    """The test harness's environment, with the benchmark's own database and queue names and quieter logs."""
    tag = uuid.uuid4().hex[:10]
    return session_env(
        workspace_root,
        MONGODB_DATABASE=f"bench_{tag}",
        ARQ_QUEUE=f"bench:{tag}",
        LOG_LEVEL="WARNING",
        GRAPHIQL="false",
        # The per-token limit on work-starting mutations would throttle the set-up (hundreds of writes).
        WORK_REQUESTS_PER_MINUTE="1000000",
    )


def uvicorn_args(app: str, port: int) -> list[str]:
    """Production settings: one process, no reload, warnings only, no access log, no WebSocket compression."""
    return [
        sys.executable, "-m", "uvicorn", app,
        "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", "--no-access-log", "--ws-per-message-deflate", "false",
    ]  # fmt: skip


def wait_until_ready(url: str, processes: list[Process], ready: str) -> None:
    """Poll ``url`` until its body contains ``ready`` (a JSON fragment) or a process dies or the deadline passes."""
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    last = "no answer"
    while time.monotonic() < deadline:
        for process in processes:
            if process.popen.poll() is not None:
                raise RuntimeError(f"{process.name} exited during start-up:\n{process.log_tail()}")
        try:
            response = httpx.get(url, timeout=2)
            last = response.text
            if response.status_code == 200 and ready in response.text.replace(" ", ""):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)  # polling interval of a deadline-bounded wait
    logs = "\n".join(f"--- {p.name}\n{p.log_tail()}" for p in processes)
    raise RuntimeError(f"{url} not ready after {START_DEADLINE_SECONDS}s: {last}\n{logs}")


@dataclass
class Stack:
    api_url: str
    baseline_url: str
    env: dict[str, str]
    api: Process
    worker: Process
    baseline: Process
    workspace_root: Path


@contextmanager
def running_stack(base: Path) -> Iterator[Stack]:
    """API + worker + baseline app, all against the same fresh database; everything stopped on exit."""
    workspace_root = base / "workspaces"
    workspace_root.mkdir(parents=True, exist_ok=True)
    env = bench_env(workspace_root)
    api_port, baseline_port = free_port(), free_port()
    with ExitStack() as stack:
        worker = spawn("worker", [sys.executable, "-m", "workers"], env, base)
        stack.callback(worker.stop)
        api = spawn("api", uvicorn_args("app.main:app", api_port), env, base)
        stack.callback(api.stop)
        baseline = spawn("baseline", uvicorn_args("bench.baseline_app:app", baseline_port), env, base)
        stack.callback(baseline.stop)
        api_url = f"http://127.0.0.1:{api_port}"
        baseline_url = f"http://127.0.0.1:{baseline_port}"
        wait_until_healthy(api_url, [api, worker])
        wait_until_ready(f"{baseline_url}/health", [baseline], '"ok":true')
        yield Stack(api_url, baseline_url, env, api, worker, baseline, workspace_root)


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")
