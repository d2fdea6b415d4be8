"""Private MongoDB (FerretDB) and Redis servers for fault tests, which stop and restart them."""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

from tests.stack import ROOT, Process, spawn

FERRETDB = Path(os.environ.get("FERRETDB_BIN", ROOT / ".data" / "bin" / "ferretdb"))
START_DEADLINE_SECONDS = 30.0


def wait_for_port(port: int, process: Process) -> None:
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited during start-up:\n{process.log_tail()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)  # polling interval of a deadline-bounded wait
    raise RuntimeError(f"{process.name} not listening on {port} after {START_DEADLINE_SECONDS}s")


def start_ferretdb(data_dir: Path, port: int, log_dir: Path) -> Process:
    if not FERRETDB.exists():
        raise RuntimeError(f"{FERRETDB} is missing: run `make tools`")
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        str(FERRETDB),
        "--handler=sqlite",
        f"--sqlite-url=file:{data_dir}/",
        f"--listen-addr=127.0.0.1:{port}",
        "--debug-addr=-",
        f"--state-dir={data_dir}",
        "--telemetry=disable",
        "--log-level=warn",
    ]
    process = spawn(f"ferretdb-{port}", args, dict(os.environ), log_dir)
    wait_for_port(port, process)
    return process


def start_redis(data_dir: Path, port: int, log_dir: Path) -> Process:
    """A Redis that keeps nothing on disk: a restart loses every queued job, the harshest case."""
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server is missing: run `make tools`")
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        server,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    process = spawn(f"redis-{port}", args, dict(os.environ), log_dir)
    wait_for_port(port, process)
    return process
