"""The stage server: one process per worker that imports DVC once, forks a session per run, and a child per stage.

Not imported by the worker: ``server.py`` runs this file by path (``python -P -u stage_server.py WORKER_PID FD``), so
it uses the standard library, DVC, and the workers' one adapter of DVC internals (workers/dvcops/dvc_internals.py,
loaded by path). The worker has threads and must not fork; this process and its sessions are single-threaded
(checked before every fork), so forking them is safe, and a stage starts with DVC and an opened Repo in memory: the
~1 s of interpreter and DVC start-up is paid once per worker, opening the workspace once per run.

Protocol, over SOCK_SEQPACKET sockets (the worker holds the other ends):

- server -> worker on the control socket (inherited as FD), once, when DVC is imported: ``ready``.
- worker -> server, one packet per run: ``{"session": {"cwd", "env", "files"}}`` with a SOCK_SEQPACKET socket attached,
  the session's channel. The server forks a session process, which opens the workspace's Repo (``open_repo_to_fork``)
  and reads the run's dvc.yaml ``files`` and their dvc.lock once (``load_pipeline_stages``), answers ``{"ready": PID}``
  on the channel (or ``{"error": TEXT}`` and ends), then serves it.
- worker -> session, one packet per stage: ``{"target", "force", "env", "group_env"}`` with two descriptors attached:
  the write end of the stage's output pipe and a stream socket for the replies.
- stage child -> worker on the reply socket, once it leads its own session and process group: ``{"pid": PID}`` +
  newline; session -> worker, once it reaped the child: ``{"pid": PID, "exit": CODE}`` + newline, CODE as
  ``os.waitstatus_to_exitcode`` gives it (-N for signal N). No such line (EOF): the session died, and so did the child.

Each stage child: ``setsid()`` (its pid names its group, which the worker signals to stop it), PR_SET_PDEATHSIG=SIGKILL
(it dies with its session, which dies with the server, which dies with the worker), SIGTERM ignored (a stop's SIGTERM
is for the command: DVC reports the command's failure and exits by itself), the output pipe on fds 1 and 2, the
request's environment in place of the session's, then `dvc repro --single-item [--force] TARGET` as DVC's
``Repo.reproduce(target, single_item=True, force=...)`` on the session's Repo (for a stage of the files the session
read, the same without reading them again: ``reproduce``), ending as the CLI's command ends (its last line, exit code
255 with DVC's error message on a failure). The group's stage shells take the group down when
DVC dies (stage_shell.c, ``$STAGE_PROCESS_GROUP``).

A session ends, SIGKILLing its children's groups, when the worker closes its channel; the server, SIGKILLing its
sessions, when the worker closes the control socket or dies.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.util
import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

PR_SET_PDEATHSIG = 1
MAX_REQUEST_BYTES = 4 * 1024 * 1024
# Sent once on the control socket when DVC is imported; the worker waits for it before opening a session.
READY = b"ready"
# DVC's waiting repository lock is retried this often instead of every 0.5 s (dvc_internals.poll_repository_lock_every).
LOCK_RETRY_SECONDS = 0.01
ADAPTER_PATH = Path(__file__).resolve().parents[1] / "dvcops" / "dvc_internals.py"
# How `dvc repro` ends (dvc/commands/repro.py CmdRepro.run), so that a stage's log reads as the CLI's.
UP_TO_DATE_LINE = "Data and pipelines are up to date."
PUSH_HINT_LINE = "Use `dvc push` to send your updates to remote storage."
# The stages the warm-up rehearses: one that runs, is skipped, is restored from the run-cache; one that fails.
REHEARSAL_PIPELINE = """\
stages:
  rehearsal:
    cmd: echo rehearsal > out.txt
    outs: [out.txt]
  failing:
    cmd: exit 3
"""


def load_adapter() -> ModuleType:
    """workers/dvcops/dvc_internals.py, by path (importing the workers' packages would import far more than DVC)."""
    spec = importlib.util.spec_from_file_location("dvc_internals", ADAPTER_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


adapter = load_adapter()


def _load_prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()


def set_parent_death_signal(signum: int) -> bool:
    """Ask Linux to send ``signum`` to this process when its parent dies; False where that is not available."""
    return _prctl is not None and _prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0


def reproduce(repo: Any, target: str, *, force: bool, loaders: dict[str, Any] | None = None) -> int:
    """`dvc repro --single-item [--force] TARGET` on ``repo``: DVC's Repo.reproduce, ended as the CLI ends it.

    A stage of ``loaders`` (``load_pipeline_stages``: the run's pipeline file, read when its session opened) is
    reproduced without reading that file again (``reproduce_loaded``): the chain benchmark needs it (`dvc repro` reads a
    pipeline once, a run's stages would each read it again).
    """
    stage = adapter.loaded_stage(loaders, target) if loaders else None
    try:
        with repo:  # closed at the end, as the CLI's command closes it
            if stage is not None:
                reproduced = adapter.reproduce_loaded(repo, stage, force=force)
            else:
                reproduced = repo.reproduce(target, single_item=True, force=force)
    except Exception:
        # DVC's log handler (set up when dvc is imported) writes "ERROR: <what failed>", as `dvc repro` does.
        logging.getLogger("dvc").exception("")
        return 255
    print(PUSH_HINT_LINE if reproduced else UP_TO_DATE_LINE, flush=True)
    return 0


def rehearse() -> None:
    """Reproduce the rehearsal stages in a scratch git+DVC workspace, every way a stage of a run can go."""
    from dvc.repo import Repo

    with tempfile.TemporaryDirectory(prefix="stage-server-rehearsal-") as root:
        subprocess.run(["git", "init", "-q", root], check=True, stdin=subprocess.DEVNULL, capture_output=True)
        Repo.init(root).close()
        Path(root, "dvc.yaml").write_text(REHEARSAL_PIPELINE, encoding="utf-8")
        os.chdir(root)
        for target in ("dvc.yaml:rehearsal", "dvc.yaml:rehearsal", "dvc.yaml:failing"):
            reproduce(adapter.open_repo_to_fork(root), target, force=False)
        Path(root, "out.txt").unlink()
        reproduce(adapter.open_repo_to_fork(root), "dvc.yaml:rehearsal", force=False)
        os.chdir("/")


def warm_up() -> list[str]:
    """Import what reproducing a stage imports; the names that failed to import (nothing depends on them).

    What to import is found, not listed: a forked child rehearses stages (``rehearse``) and reports the modules it had
    to import, so the list follows the installed DVC.
    """
    import dvc.repo  # noqa: F401

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_fd)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            rehearse()
            with os.fdopen(write_fd, "w") as report:
                report.write("\n".join(sys.modules))
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd) as report:
        names = report.read().split()
    _, status = os.waitpid(pid, 0)
    if not names:
        return [f"the rehearsal (exit status {os.waitstatus_to_exitcode(status)})"]
    failed = []
    for name in names:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except Exception:
            failed.append(name)
    return failed


def prepare_process() -> None:
    """What this server (and so every session and stage) needs before it forks anything."""
    adapter.poll_repository_lock_every(LOCK_RETRY_SECONDS)
    # tqdm (DVC's progress bars) starts a monitor thread with its first bar, and a process with threads must not
    # fork; the monitor only tunes how often bars redraw.
    import tqdm  # type: ignore[import-untyped]

    tqdm.tqdm.monitor_interval = 0


def end_child(code: int) -> None:
    """Leave a forked child as an interpreter exit would, without tearing down the modules it shares with its parent."""
    with contextlib.suppress(BaseException):
        logging.shutdown()
    with contextlib.suppress(BaseException):
        sys.stdout.flush()
    with contextlib.suppress(BaseException):
        sys.stderr.flush()
    os._exit(code & 0xFF)


class Server:
    """Serves one channel: the control socket (sessions are forked from here) or a session's (stages are)."""

    def __init__(self, control: socket.socket, repo: Any = None, loaders: dict[str, Any] | None = None) -> None:
        self.control = control
        self.repo = repo
        """A session's Repo (None: the stage server itself, which only forks sessions)."""
        self.loaders = loaders
        """A session's pipeline files as read when it opened (``load_pipeline_stages``), if they could be read."""
        self.selector = selectors.DefaultSelector()
        self.wakeup_read, self.wakeup_write = os.pipe()
        os.set_blocking(self.wakeup_read, False)
        os.set_blocking(self.wakeup_write, False)
        # A stage child's reply socket; None for a session process, which reports on its own channel.
        self.children: dict[int, socket.socket | None] = {}

    def serve(self) -> None:
        # SIGCHLD only wakes the loop up (through the wakeup fd); the loop reaps.
        signal.set_wakeup_fd(self.wakeup_write, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        self.selector.register(self.control, selectors.EVENT_READ, "control")
        self.selector.register(self.wakeup_read, selectors.EVENT_READ, "children")
        while True:
            for key, _ in self.selector.select():
                if key.data == "children":
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self.wakeup_read, 4096):
                            pass
                    self.reap()
                elif not self.accept():
                    self.shut_down()
                    return

    def accept(self) -> bool:
        """Handle one request; False when the worker has gone."""
        try:
            data, fds, _, _ = socket.recv_fds(self.control, MAX_REQUEST_BYTES, 2)
        except (ConnectionError, OSError):
            return False
        if not data:
            for fd in fds:
                os.close(fd)
            return False
        if self.repo is None and len(fds) == 1:
            self.open_session(data, socket.socket(fileno=fds[0]))
        elif self.repo is not None and len(fds) == 2:
            output_fd, reply_fd = fds
            reply = socket.socket(fileno=reply_fd)
            try:
                self.spawn(json.loads(data), output_fd, reply)
            except Exception:
                traceback.print_exc()
                reply.close()
            finally:
                os.close(output_fd)
        else:
            for fd in fds:
                os.close(fd)
        return True

    def fork(self) -> int:
        threads = threading.enumerate()
        if len(threads) != 1:
            raise RuntimeError(f"stage server has threads, refusing to fork: {threads}")
        # Flushed before the fork so that the child does not write the server's buffered output again.
        sys.stdout.flush()
        sys.stderr.flush()
        return os.fork()

    def leave_parent(self, parent_pid: int) -> None:
        """In a forked child: its own session and process group, death with its parent, none of the parent's files."""
        os.setsid()
        set_parent_death_signal(signal.SIGKILL)
        if os.getppid() != parent_pid:
            # The parent died before the death signal was armed.
            os._exit(128 + signal.SIGKILL)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.selector.close()
        self.control.close()
        os.close(self.wakeup_read)
        os.close(self.wakeup_write)
        for other in self.children.values():
            if other is not None:
                other.close()

    def open_session(self, data: bytes, channel: socket.socket) -> None:
        """Fork a session process serving ``channel`` with the workspace's Repo open (see the module's docstring)."""
        try:
            request = json.loads(data)["session"]
            parent_pid = os.getpid()
            pid = self.fork()
        except Exception:
            traceback.print_exc()
            channel.close()
            return
        if pid == 0:
            code = 255
            try:
                self.leave_parent(parent_pid)
                code = run_session(request, channel)
            except BaseException:
                traceback.print_exc()
            finally:
                end_child(code)
        channel.close()
        self.children[pid] = None
        self.reap()

    def spawn(self, request: dict[str, Any], output_fd: int, reply: socket.socket) -> None:
        parent_pid = os.getpid()
        pid = self.fork()
        if pid == 0:
            self.run_stage(request, output_fd, reply, parent_pid)  # never returns
        self.children[pid] = reply
        # Reaped at once if it already ended, before its SIGCHLD wakes us up.
        self.reap()

    def run_stage(self, request: dict[str, Any], output_fd: int, reply: socket.socket, parent_pid: int) -> None:
        code = 255
        try:
            self.leave_parent(parent_pid)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.dup2(output_fd, 1)
            os.dup2(output_fd, 2)
            os.close(output_fd)
            # Once this process leads its group, so that a stop can signal it from the first moment.
            reply.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
            reply.close()
            os.environ.clear()
            os.environ.update(request["env"])
            os.environ[request["group_env"]] = str(os.getpgrp())
            code = reproduce(self.repo, str(request["target"]), force=bool(request["force"]), loaders=self.loaders)
        except BaseException:
            traceback.print_exc()
            code = 255
        finally:
            end_child(code)

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid not in self.children:
                continue
            reply = self.children.pop(pid)
            if reply is None:
                continue  # a session process: its worker sees its channel close
            with contextlib.suppress(OSError):
                reply.setblocking(False)
                message = {"pid": pid, "exit": os.waitstatus_to_exitcode(status)}
                reply.send(json.dumps(message).encode() + b"\n")
            reply.close()

    def shut_down(self) -> None:
        for pid in list(self.children):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        for pid, reply in list(self.children.items()):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            if reply is not None:
                reply.close()
        self.children.clear()


def run_session(request: dict[str, Any], channel: socket.socket) -> int:
    """A session process: open the Repo, say ready (or why not), serve the worker's stage requests until it leaves."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    try:
        repo = adapter.open_repo_to_fork(os.curdir)
    except Exception as exc:  # the worker reports it as the run's error
        with contextlib.suppress(OSError):
            channel.send(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
        return 1
    loaders = None
    with contextlib.suppress(Exception):  # a file DVC cannot read: its stages say why when they are reproduced
        loaders = adapter.load_pipeline_stages(repo, [str(path) for path in request.get("files", [])])
    # What opening allocated stays put: children do not copy its pages when the collector walks them.
    gc.collect()
    gc.freeze()
    channel.send(json.dumps({"ready": os.getpid()}).encode())
    Server(channel, repo, loaders).serve()
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.stderr.write(f"usage: {argv[0]} WORKER_PID FD\n")
        return 2
    worker_pid, fd = int(argv[1]), int(argv[2])
    set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != worker_pid:
        return 1
    control = socket.socket(fileno=fd)
    control.set_inheritable(False)
    if not adapter.checked():
        sys.stderr.write(
            f"stage server: DVC {adapter.dvc_version()} is not a {adapter.CHECKED_DVC_MAJOR}.x DVC its adapter was "
            "checked with; DVC's lock is polled at its own pace\n"
        )
    prepare_process()
    failed = warm_up()
    if failed:
        sys.stderr.write(f"stage server: could not import {', '.join(failed)} (a stage imports what it needs)\n")
    # Nothing imported so far is garbage; freezing it keeps the collector (in the server and in every child) from
    # walking, and so copying, the pages of all those modules' objects.
    gc.collect()
    gc.freeze()
    control.send(READY)
    Server(control).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
