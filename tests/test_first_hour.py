"""A new user's first hour: `make run` from nothing, the CLI beside it, clear errors, and every way of stopping it.

These start `make run`'s own scripts (.ci/with-services.sh --persist -- .ci/run-app.sh) with a scratch data
directory (STACK_DATA_DIR), so they create their own PostgreSQL cluster, FerretDB and Redis, as `make run` does.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.stack import ROOT, free_port

START_DEADLINE_SECONDS = 120.0
STOP_DEADLINE_SECONDS = 60.0
TOKEN = re.compile(r"^\s+(dvcs_\S+)$", re.MULTILINE)


def local_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh terminal: no service URLs (those of the test session's services removed)."""
    env = {k: v for k, v in os.environ.items() if k not in {"MONGODB_URL", "REDIS_URL", "POSTGRESQL_URL"}}
    env.pop("WORKSPACE_ROOT", None)
    env.pop("MONGODB_DATABASE", None)
    return env | {"STACK_DATA_DIR": str(data_dir), **extra}


@dataclass
class MakeRun:
    popen: subprocess.Popen[bytes]
    log: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # Under the checkout (not /tmp/pytest-of-root, which is private): PostgreSQL runs as another user when root.
    path = ROOT / ".data" / f"test-make-run-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    # Where with-services.sh puts the cluster when that user cannot reach the checkout (one under /root): a
    # directory of this test's own, removed with it.
    fallback = Path(tempfile.mkdtemp(prefix="make-run-pg-"))
    fallback.chmod(0o755)
    monkeypatch.setenv("TMPDIR", str(fallback))
    yield path
    shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(fallback, ignore_errors=True)


def start(data_dir: Path) -> MakeRun:
    port = free_port()
    log = data_dir / f"make-run-{port}.log"
    with log.open("ab") as handle:
        popen = subprocess.Popen(
            [str(ROOT / ".ci" / "with-services.sh"), "--persist", "--", str(ROOT / ".ci" / "run-app.sh")],
            cwd=ROOT,
            env=local_env(data_dir, API_PORT=str(port)),
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal or a process manager gives it
        )
    run = MakeRun(popen, log, port)
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        assert popen.poll() is None, f"make run exited during start-up:\n{run.output()}"
        try:
            if httpx.get(f"{run.url}/health", timeout=2).status_code == 200:
                return run
        except httpx.HTTPError:
            pass
        time.sleep(0.2)  # polling interval of a deadline-bounded wait
    stop(run, signal.SIGKILL)
    raise AssertionError(f"make run not healthy after {START_DEADLINE_SECONDS}s:\n{run.output()}")


def stop(run: MakeRun, signum: signal.Signals) -> set[int]:
    """Send ``signum`` to make run's whole process group; the processes it had that are still alive after."""
    started = descendants(run.popen.pid)
    os.killpg(run.popen.pid, signum)
    try:
        run.popen.wait(timeout=STOP_DEADLINE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(run.popen.pid, signal.SIGKILL)
        run.popen.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.1)  # polling interval of a deadline-bounded wait
    return {pid for pid in started if alive(pid)}


def port_open(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
    except httpx.TransportError:
        return False
    return True


def me(run: MakeRun, token: str) -> str:
    response = httpx.post(
        f"{run.url}/graphql", json={"query": "{ me { name } }"}, headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    name: str = response.json()["data"]["me"]["name"]
    return name


def cli(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=local_env(data_dir, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_make_run_from_nothing_gives_a_token_and_the_cli_and_sigterm_stops_all_of_it(data_dir: Path) -> None:
    run = start(data_dir)
    try:
        tokens = TOKEN.findall(run.output())
        assert len(tokens) == 1, run.output()
        assert me(run, tokens[0]) == "admin"
        assert "PostgreSQL handler" in run.output()

        # Another terminal: the README's first step finds the running stack through .data/services.env.
        created = cli(data_dir, "create-user", "alice")
        assert created.returncode == 0, created.stderr
        assert me(run, created.stdout.strip()) == "alice"
    finally:
        left = stop(run, signal.SIGTERM)
    assert not left, f"still running after SIGTERM: {left}\n{run.output()}"
    assert not port_open(run.port)
    assert not (data_dir / "services.env").exists()


def test_sighup_stops_all_of_it_and_a_second_start_creates_no_second_admin(data_dir: Path) -> None:
    first = start(data_dir)
    left = stop(first, signal.SIGHUP)
    assert not left, f"still running after SIGHUP: {left}\n{first.output()}"
    assert not port_open(first.port)
    assert len(TOKEN.findall(first.output())) == 1

    again = start(data_dir)
    try:
        assert not TOKEN.findall(again.output()), again.output()
        assert "python -m app create-token NAME" in again.output()
    finally:
        left = stop(again, signal.SIGTERM)
    assert not left


def test_cli_without_a_reachable_database_answers_one_line(data_dir: Path) -> None:
    port = free_port()  # nothing listens there
    result = cli(data_dir, "create-user", "bob", MONGODB_URL=f"mongodb://127.0.0.1:{port}")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"127.0.0.1:{port}" in result.stderr and "make run" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_setting_stops_start_up_naming_the_variable(data_dir: Path) -> None:
    for command in (
        [sys.executable, "-m", "app", "create-user", "bob"],
        [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(free_port())],
    ):
        result = subprocess.run(
            command,
            cwd=ROOT,
            env=local_env(data_dir, MAX_PAGE_SIZE="abc"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode != 0
        assert "MAX_PAGE_SIZE" in result.stderr and "abc" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr, result.stderr
