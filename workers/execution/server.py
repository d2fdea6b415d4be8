"""The worker's side of the stage server (stage_server.py): starting it, restarting it, opening sessions in it.

One server per worker process, started on first use (or by ``start_stage_server`` at worker start-up) and again
whenever it is found dead. It takes a second or two to import DVC and rehearse a stage; ``open_session`` waits until it
says it is ready. A run opens one session (``open_session``): a process forked from the server with the workspace's
Repo open and the run's pipeline file read, from which each of the run's stages is forked (``StageSession.start``).
The server is a child of the thread that started it (its death signal is tied to that thread): start it and open
sessions from the event loop's thread, which lives as long as the worker.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from workers.execution.environment import stage_environment
from workers.execution.shell import GROUP_ENV

logger = logging.getLogger(__name__)

SERVER_SCRIPT = Path(__file__).with_name("stage_server.py")
# A ready server answers with the child's pid within milliseconds (a fork); this is for a wedged one.
REPLY_SECONDS = 30.0
# Importing DVC and rehearsing a stage takes a second or two; on a loaded machine, more.
SERVER_READY_SECONDS = 120.0
# A line from the server or a stage child is a small JSON object.
REPLY_LIMIT = 64 * 1024
# The server's one packet on the control socket, once it has DVC imported (stage_server.py).
READY = b"ready"
READY_POLL_SECONDS = 0.01


class StageServerError(RuntimeError):
    """The stage server could not start a stage."""


# Opening a session opens the workspace's Repo (tens of ms); this is for a wedged one.
SESSION_READY_SECONDS = 30.0
SESSION_REPLY_LIMIT = 64 * 1024


@dataclass
class _Connection:
    process: subprocess.Popen[bytes]
    control: socket.socket
    ready: bool = False

    def alive(self) -> bool:
        return self.process.poll() is None

    def poll_ready(self) -> bool:
        """Whether the server said it has DVC imported and takes requests (it says so once, then nothing more)."""
        if not self.ready:
            with contextlib.suppress(OSError):
                self.ready = self.control.recv(64, socket.MSG_DONTWAIT) == READY
        return self.ready

    def close(self) -> None:
        """Close our end (the server then SIGKILLs its stages and exits) and make sure it is gone."""
        self.control.close()
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


_lock = threading.Lock()
_connection: _Connection | None = None


def server_pid() -> int | None:
    """The running stage server's pid, if one runs."""
    with _lock:
        return _connection.process.pid if _connection is not None and _connection.alive() else None


def start_stage_server() -> None:
    """Start the stage server now rather than on the first run, so that the first run need not wait for it.

    Call it from the event loop's thread (see the module's docstring); nothing happens if a server runs.
    """
    _connected()


async def wait_for_stage_server(seconds: float) -> bool:
    """Start the stage server if none runs, and wait up to ``seconds`` for it to be ready; whether it is."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not _connected().poll_ready():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(READY_POLL_SECONDS)
    return True


def shut_down_server() -> None:
    """Stop the stage server (and whatever stages it still runs); the next launch starts a new one."""
    global _connection
    with _lock:
        if _connection is not None:
            _connection.close()
            _connection = None


atexit.register(shut_down_server)


def _connected(replace: _Connection | None = None) -> _Connection:
    """The live server, started if there is none (or if it is ``replace``, which failed us)."""
    global _connection
    with _lock:
        if _connection is not None and (_connection is replace or not _connection.alive()):
            _connection.close()
            _connection = None
        if _connection is None:
            _connection = _start()
        return _connection


def _start() -> _Connection:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        process = subprocess.Popen(
            # -P: no script folder on sys.path (it holds modules named like stdlib ones); -u: DVC's output unbuffered,
            # as PYTHONUNBUFFERED makes it for a CLI process.
            [sys.executable, "-P", "-u", str(SERVER_SCRIPT), str(os.getpid()), str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            # The environment DVC starts in; each stage then gets its own (see stage_server.py).
            env=stage_environment(),
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            # Its stderr is the worker's: a crash of the server is worth seeing there.
            start_new_session=True,
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return _Connection(process, ours)


class ServerStage:
    """A stage child of the stage server: its pid (its process group), its output, its exit code."""

    def __init__(
        self, pid: int, output: asyncio.StreamReader, output_transport: asyncio.BaseTransport, replies: _Replies
    ) -> None:
        self.pid = pid
        self.stdout = output
        self._output_transport = output_transport
        self._replies = replies
        self._exit = asyncio.ensure_future(replies.exit_code())

    async def wait(self) -> int:
        """The child's exit code as the server saw it (-N for signal N); -SIGKILL if the server died first."""
        return await asyncio.shield(self._exit)

    def release(self) -> None:
        """Stop reading the output pipe (something that left the group may still hold it open)."""
        self._output_transport.close()


class _Replies:
    """The reply socket: the child's ``{"pid"}`` line, then the server's ``{"exit"}`` line."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.code: int | None = None

    async def next_message(self) -> dict[str, int]:
        line = await self.reader.readline()
        if not line:
            return {}
        message = json.loads(line)
        if "exit" in message:
            self.code = int(message["exit"])
        return {key: int(value) for key, value in message.items()}

    async def exit_code(self) -> int:
        try:
            while self.code is None:
                if not await self.next_message():
                    # The server died; its children die with it (PR_SET_PDEATHSIG=SIGKILL).
                    return -signal.SIGKILL
            return self.code
        finally:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()


async def _submit(control: socket.socket, request: bytes) -> ServerStage | None:
    """Send one request; the started stage, or None if the server closed the reply socket without a word."""
    loop = asyncio.get_running_loop()
    output_read, output_write = os.pipe()
    ours, theirs = socket.socketpair()
    try:
        try:
            socket.send_fds(control, [request], [output_write, theirs.fileno()])
        except OSError:
            ours.close()
            os.close(output_read)
            return None
        finally:
            os.close(output_write)
            theirs.close()
    except BaseException:
        ours.close()
        os.close(output_read)
        raise
    output = asyncio.StreamReader()
    try:
        reader, writer = await asyncio.open_unix_connection(sock=ours, limit=REPLY_LIMIT)
    except BaseException:
        ours.close()
        os.close(output_read)
        raise
    replies = _Replies(reader, writer)
    try:
        async with asyncio.timeout(REPLY_SECONDS):
            first = await replies.next_message()
        if not first:
            writer.close()
            os.close(output_read)
            return None
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(output), os.fdopen(output_read, "rb", buffering=0)
        )
    except BaseException:
        writer.close()
        with contextlib.suppress(OSError):
            os.close(output_read)
        raise
    return ServerStage(first["pid"], output, transport, replies)


class StageSession:
    """A run's session in the stage server: the workspace's Repo open, each of the run's stages forked from there.

    ``start`` hands it one stage (a child of its own session and process group, its output, its exit code); ``close``
    ends the session, SIGKILLing the stages it still runs (the scheduler stops its stages before).
    """

    def __init__(self, pid: int, channel: socket.socket) -> None:
        self.pid = pid
        self._channel = channel

    async def start(self, target: str, *, force: bool, env: Mapping[str, str]) -> ServerStage:
        """`dvc repro --single-item [--force] TARGET` in ``env``, forked from the session; returns once it leads its
        group."""
        if self._channel.fileno() < 0:
            raise StageServerError("the run's stage session is closed")
        request = {"target": target, "force": force, "env": dict(env), "group_env": GROUP_ENV}
        try:
            stage = await _submit(self._channel, json.dumps(request).encode())
        except TimeoutError:
            self.close()
            raise StageServerError(f"the run's stage session did not answer within {REPLY_SECONDS} s") from None
        if stage is None:
            raise StageServerError("the run's stage session ended (see the worker's stderr)")
        return stage

    def close(self) -> None:
        self._channel.close()


async def open_session(cwd: Path, files: Sequence[str], env: Mapping[str, str]) -> StageSession:
    """A session on the workspace at ``cwd`` with ``env`` as DVC's environment, once the stage server is ready (it is
    started, or restarted, if none runs). It reads the dvc.yaml ``files`` (paths relative to ``cwd``: the run's
    pipeline) and their dvc.lock once. Raises StageServerError when it cannot be opened, saying why."""
    failed: _Connection | None = None
    for _ in range(2):
        connection = await _ready_connection(failed)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        request = json.dumps({"session": {"cwd": str(cwd), "env": dict(env), "files": list(files)}}).encode()
        try:
            try:
                socket.send_fds(connection.control, [request], [theirs.fileno()])
            finally:
                theirs.close()
            ours.setblocking(False)
            async with asyncio.timeout(SESSION_READY_SECONDS):
                answer = await asyncio.get_running_loop().sock_recv(ours, SESSION_REPLY_LIMIT)
        except OSError:
            ours.close()
            failed = connection  # the server died while we asked it: a new one, once
            continue
        except TimeoutError:
            ours.close()
            raise StageServerError(f"the stage session did not open within {SESSION_READY_SECONDS} s") from None
        except BaseException:
            ours.close()
            raise
        ready = json.loads(answer) if answer else {}
        if "ready" in ready:
            ours.setblocking(True)
            return StageSession(int(ready["ready"]), ours)
        ours.close()
        if "error" in ready:
            raise StageServerError(f"DVC could not open the workspace: {ready['error']}")
        failed = connection
    raise StageServerError("the stage server ended while opening a session (see the worker's stderr)")


async def _ready_connection(replace: _Connection | None) -> _Connection:
    """The live server once it is ready (started if none runs, or if it is ``replace``, which failed us)."""
    connection = _connected(replace)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SERVER_READY_SECONDS
    while not connection.poll_ready():
        if not connection.alive():
            connection = _connected(connection)
        if loop.time() >= deadline:
            raise StageServerError(f"the stage server was not ready within {SERVER_READY_SECONDS} s")
        await asyncio.sleep(READY_POLL_SECONDS)
    return connection
