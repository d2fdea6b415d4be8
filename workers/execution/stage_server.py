"""The stage server: one long-lived process per worker that imports DVC once and forks a child per stage.

Not imported by the worker: ``server.py`` runs this file by path (``python -P -u stage_server.py WORKER_PID FD``), so
it uses the standard library and DVC only. The worker has threads and must not fork; this process is single-threaded
(checked before every fork), so forking it is safe, and a child starts with DVC and everything a `dvc repro` needs
already imported: the ~1 s of interpreter and DVC start-up is paid once per worker instead of once per stage.

Protocol, over the SOCK_SEQPACKET socket inherited as FD (the worker holds the other end):

- server -> worker, once, when DVC is imported: ``ready``.
- worker -> server, one packet per stage: a JSON object ``{"cwd", "argv", "env", "group_env"}`` with two descriptors
  attached: the write end of the stage's output pipe and a stream socket for the replies.
- child -> worker on the reply socket, once it leads its own session and process group: ``{"pid": PID}`` + newline.
- server -> worker on the reply socket, once it reaped the child: ``{"pid": PID, "exit": CODE}`` + newline, CODE as
  ``os.waitstatus_to_exitcode`` gives it (-N for signal N). No such line (EOF): the server died, and so did the child.

Each child: ``setsid()`` (its pid names its group, which the worker signals to stop it), PR_SET_PDEATHSIG=SIGKILL (it
dies with this server, which dies with the worker), SIGTERM ignored as the old trampoline did (a stop's SIGTERM is
for the command: DVC reports the command's failure and exits by itself), the output pipe on fds 1 and 2, the request's
environment in place of this process's, then ``dvc.cli.main(argv)``: DVC's own CLI, so its behaviour and output are the
CLI's. The group's stage shells take the group down when DVC dies (stage_shell.py, ``$STAGE_PROCESS_GROUP``).

The server ends, SIGKILLing its children's groups, when the worker closes its end or dies.

Sessions (one per run): a request ``{"session": {"cwd", "env", "files"}}`` with one descriptor attached, a
SOCK_SEQPACKET socket, forks a session process that opens the workspace's DVC Repo and reads the given dvc.yaml
files and their dvc.lock once (under DVC's repository lock), answers ``{"ready": PID}`` (or ``{"error": TEXT}``
and ends) on that socket, and then serves it exactly as this server serves its control socket: stage requests, each
forked into a child of its own session and process group. A child whose request is the run's
`dvc --wait-for-lock repro --single-item [--force] -- TARGET` of a stage in those files reproduces that stage
the way DVC's CLI would (``reproduce_loaded``) instead of opening the workspace and parsing its files again; any
other request runs DVC's CLI. The session ends, SIGKILLing its children's groups, when the worker closes its socket.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

PR_SET_PDEATHSIG = 1
MAX_REQUEST_BYTES = 4 * 1024 * 1024
# Sent once on the control socket when DVC is imported; until then the worker launches stages as processes of their own.
READY = b"ready"
# DVC's repository lock, with --wait-for-lock, is retried every DEFAULT_TIMEOUT / 6 = 0.5 s (dvc/lock.py Lock.lock).
# Stages waiting on each other's lock poll it this often instead; see _poll_repository_lock_faster.
LOCK_RETRY_SECONDS = 0.01
# What a `dvc repro --single-item` imports beyond `dvc.cli` (a stage that runs, is skipped, is restored from the
# run-cache, fails), recorded with DVC 3.67; their dependencies come along. A name that does not import is skipped:
# the child imports what it needs as usual, only slower.
WARM_MODULES = (
    "dvc.cli.parser",
    "dvc.commands.repro",
    "dvc.repo",
    "dvc.repo.index",
    "dvc.repo.reproduce",
    "dvc.repo.scm_context",
    "dvc.repo.stage",
    "dvc.repo.graph",
    "dvc.repo.worktree",
    "dvc.repo.artifacts",
    "dvc.repo.datasets",
    "dvc.repo.open_repo",
    "dvc.repo.metrics",
    "dvc.repo.params",
    "dvc.repo.plots",
    "dvc.dirs",
    "dvc.config",
    "dvc.dvcfile",
    "dvc.fs",
    "dvc.fs.dvc",
    "dvc.fs.git",
    "dvc.ignore",
    "dvc.lock",
    "dvc.output",
    "dvc.dependency",
    "dvc.dependency.param",
    "dvc.dependency.repo",
    "dvc.parsing",
    "dvc.rwlock",
    "dvc.scm",
    "dvc.stage",
    "dvc.stage.cache",
    "dvc.stage.imports",
    "dvc.stage.loader",
    "dvc.stage.run",
    "dvc.stage.serialize",
    "dvc.stage.utils",
    "dvc.schema",
    "dvc.cachemgr",
    "dvc.data_cloud",
    "dvc.ui",
    "dvc.utils.serialize",
    "dvc.utils.fs",
    "dvc.utils.objects",
    "dvc.utils.strictyaml",
    "dvc.utils.threadpool",
    "dvc_data.hashfile.build",
    "dvc_data.hashfile.cache",
    "dvc_data.hashfile.checkout",
    "dvc_data.hashfile.db.local",
    "dvc_data.hashfile.diff",
    "dvc_data.hashfile.gc",
    "dvc_data.hashfile.hash",
    "dvc_data.hashfile.status",
    "dvc_data.hashfile._progress",
    "dvc_data.hashfile.state",
    "dvc_data.hashfile.transfer",
    "dvc_data.hashfile.tree",
    "dvc_data.index",
    "dvc_data.index.checkout",
    "dvc_data.index.save",
    "dvc_objects.fs.local",
    "dvc_objects.fs.generic",
    "scmrepo.git",
    "scmrepo.git.backend.dulwich",
    "scmrepo.git.backend.pygit2",
    "dulwich.repo",
    "dulwich.index",
    "dulwich.ignore",
    "dulwich.worktree",
    "configobj",
    "ruamel.yaml",
    "ruamel.yaml.mergevalue",
    "platformdirs",
    "fsspec.implementations.memory",
    "fsspec.implementations.local",
    "diskcache",
    "sqlite3",
    "psutil",
    "asyncio",
    "concurrent.futures.thread",
    "subprocess",
)


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


def warm_up() -> list[str]:
    """Import DVC and what a repro uses; the names that failed to import (nothing depends on them)."""
    import dvc.cli

    failed = []
    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except Exception:
            failed.append(name)
    # Built once here rather than in every child (argparse with DVC's ~100 commands).
    from dvc.cli.parser import get_main_parser

    get_main_parser()
    assert dvc.cli.main is not None
    return failed


def _poll_repository_lock_faster() -> None:
    """In a stage child: DVC's waiting repository lock is retried every LOCK_RETRY_SECONDS instead of every 0.5 s.

    Only when waiting without end (``--wait-for-lock``, i.e. every stage we launch), only in this child, and only the
    interval: the lock, what it protects and DVC's loop around it are unchanged, so no result can differ; stages that
    queue for the lock (their pre- and post-command steps) get it milliseconds after it is freed instead of up to half
    a second later. Lock.lock reads the module's DEFAULT_TIMEOUT once, at its start, to compute its retry delay; this
    process is single-threaded when DVC takes its lock, so setting it around the call affects that call only. Locks
    that give up after a few tries (DVC's rwlock, wait=False) keep DVC's 3 s budget.
    """
    import dvc.lock

    original = dvc.lock.Lock.lock
    retries = 6  # dvc/lock.py Lock.lock: delay = DEFAULT_TIMEOUT / default_retries, default_retries = 6

    def lock(self: Any) -> Any:
        if not getattr(self, "_wait", False):
            return original(self)
        saved = dvc.lock.DEFAULT_TIMEOUT
        dvc.lock.DEFAULT_TIMEOUT = LOCK_RETRY_SECONDS * retries
        try:
            return original(self)
        finally:
            dvc.lock.DEFAULT_TIMEOUT = saved

    dvc.lock.Lock.lock = lock


# `dvc repro` options a loaded stage is reproduced with; a request asking for anything else runs DVC's CLI instead.
_REPRO_DEFAULTS = {
    "dry": False,
    "interactive": False,
    "pipeline": False,
    "all_pipelines": False,
    "downstream": False,
    "recursive": False,
    "force_downstream": False,
    "pull": False,
    "allow_missing": False,
    "glob": False,
    "quiet": 0,
    "verbose": 0,
    "cd": os.curdir,
}


class LoadedStages:
    """A session's DVC Repo and its pipeline files' stages, read once when the session opens.

    Each stage child forked from the session reproduces its stage as `dvc repro --single-item` would once it
    collected that stage (dvc/repo/reproduce.py ``reproduce``: DVC's repository lock, its scm context, then
    ``_reproduce`` of the one stage), so what a run leaves behind (dvc.lock, cache, run-cache, .gitignore) is the
    CLI's. What was read stays valid for the run as it does within one `dvc repro`: a stage's own dvc.lock entry is
    written only by that stage, its dependencies are hashed afresh when it runs, and DVC's dump merges the entry into
    dvc.lock as it is on disk (under the lock) when the stage ends.
    """

    def __init__(self, repo: Any, loaders: dict[str, Any]) -> None:
        self.repo = repo
        self.loaders = loaders
        """DVC's StageLoader of each dvc.yaml read (parsed dvc.yaml and dvc.lock; a stage is built on demand)."""

    @classmethod
    def load(cls, files: list[str]) -> LoadedStages:
        """In the session process, in the workspace: each dvc.yaml of ``files`` (and its dvc.lock), read once."""
        from dvc.dvcfile import load_file
        from dvc.repo import Repo, lock_repo

        repo = Repo(os.curdir, _wait_for_lock=True)
        with lock_repo(repo):
            loaders = {path: load_file(repo, path).stages for path in files}
        # The repository lock's release reset the Repo (its state database closed): a child opens its own.
        return cls(repo, loaders)

    def reproduction(self, argv: list[str]) -> Callable[[], int] | None:
        """How a stage child runs ``argv``: its loaded stage's reproduction, or None for DVC's CLI."""
        from dvc.cli import parse_args
        from dvc.commands.repro import CmdRepro

        try:
            args = parse_args(argv)
        except BaseException:
            return None
        if getattr(args, "func", None) is not CmdRepro or not args.single_item or not args.wait_for_lock:
            return None
        if args.on_error not in (None, "fail") or any(getattr(args, k) != v for k, v in _REPRO_DEFAULTS.items()):
            return None
        if len(args.targets) != 1:
            return None
        path, _, name = args.targets[0].rpartition(":")
        loader = self.loaders.get(path)
        if loader is None or name not in loader:
            return None
        stage = loader[name]
        return lambda: reproduce_loaded(
            self.repo, stage, force=args.force, run_cache=not args.no_run_cache, no_commit=args.no_commit
        )


def reproduce_loaded(repo: Any, stage: Any, *, force: bool, run_cache: bool, no_commit: bool) -> int:
    """`dvc repro --single-item` of an already collected stage: DVC's CLI steps, output and exit codes for it."""
    from dvc.cli import _log_exceptions
    from dvc.cli import logger as log
    from dvc.commands.status import CmdDataStatus
    from dvc.config import ConfigError
    from dvc.exceptions import DvcException
    from dvc.repo import lock_repo
    from dvc.repo.reproduce import _reproduce
    from dvc.ui import ui

    ui.enable()  # dvc/cli/__init__.py main, for a command that is not --quiet
    try:
        with repo:  # CmdBase.do_run
            with lock_repo(repo), repo.scm_context():  # Repo.reproduce: @locked, @scm_context
                reproduced = _reproduce(
                    [stage],
                    graph=None,
                    on_error="fail",
                    force=force,
                    force_downstream=False,
                    dry=False,
                    interactive=repo.config["core"].get("interactive", False),
                    pull=False,
                    allow_missing=False,
                    run_cache=run_cache,
                    no_commit=no_commit,
                )
            # CmdRepro.run
            ui.write(
                CmdDataStatus.UP_TO_DATE_MSG
                if not reproduced
                else "Use `dvc push` to send your updates to remote storage."
            )
        return 0
    except ConfigError:
        log.exception("configuration error")
        return 251
    except DvcException:
        log.exception("")
        return 255
    except Exception as exc:  # as DVC's CLI does
        return int(_log_exceptions(exc) or 255)


def run_session(request: dict[str, Any], channel: socket.socket) -> int:
    """A session process: load the stages, say ready (or why not), serve the worker's stage requests until it leaves."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    atexit._clear()
    _poll_repository_lock_faster()
    # tqdm (DVC's progress bars) starts a monitor thread with its first bar, and a process with threads must not
    # fork; the monitor only tunes how often bars redraw.
    import tqdm  # type: ignore[import-untyped]

    tqdm.tqdm.monitor_interval = 0
    try:
        stages = LoadedStages.load([str(f) for f in request["files"]])
    except Exception as exc:  # the worker then runs the stages through DVC's CLI, which reports it
        with contextlib.suppress(OSError):
            channel.send(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
        return 1
    # What loading allocated stays put: children do not copy its pages when the collector walks them.
    gc.collect()
    gc.freeze()
    channel.send(json.dumps({"ready": os.getpid()}).encode())
    Server(channel, stages).serve()
    return 0


class Server:
    def __init__(self, control: socket.socket, stages: LoadedStages | None = None) -> None:
        self.control = control
        self.stages = stages
        """A session's loaded stages (None: the stage server itself, which runs DVC's CLI for every request)."""
        self.selector = selectors.DefaultSelector()
        self.wakeup_read, self.wakeup_write = os.pipe()
        os.set_blocking(self.wakeup_read, False)
        os.set_blocking(self.wakeup_write, False)
        # A stage child's reply socket; None for a session process, which reports on its own socket.
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
        if len(fds) == 1 and self.stages is None:
            self.open_session(data, socket.socket(fileno=fds[0]))
            return True
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            return True
        output_fd, reply_fd = fds
        reply = socket.socket(fileno=reply_fd)
        try:
            request = json.loads(data)
            self.spawn(request, output_fd, reply)
        except Exception:
            traceback.print_exc()
            reply.close()
        finally:
            os.close(output_fd)
        return True

    def fork(self) -> int:
        threads = threading.enumerate()
        if len(threads) != 1:
            raise RuntimeError(f"stage server has threads, refusing to fork: {threads}")
        # Flushed before the fork so that the child does not write the server's buffered output again.
        sys.stdout.flush()
        sys.stderr.flush()
        return os.fork()

    def spawn(self, request: dict[str, Any], output_fd: int, reply: socket.socket) -> None:
        server_pid = os.getpid()
        pid = self.fork()
        if pid == 0:
            self.run_child(request, output_fd, reply, server_pid)  # never returns
        self.children[pid] = reply
        # Reaped at once if it already ended, before its SIGCHLD wakes us up.
        self.reap()

    def leave_server(self, server_pid: int) -> None:
        """In a forked child: its own session and process group, death with the server, none of the server's files."""
        os.setsid()
        set_parent_death_signal(signal.SIGKILL)
        if os.getppid() != server_pid:
            # The server died before the death signal was armed.
            os._exit(128 + signal.SIGKILL)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.selector.close()
        self.control.close()
        os.close(self.wakeup_read)
        os.close(self.wakeup_write)
        for other in self.children.values():
            if other is not None:
                other.close()

    def open_session(self, data: bytes, channel: socket.socket) -> None:
        """Fork a session process serving ``channel`` with the request's stages loaded (see the module's docstring)."""
        try:
            request = json.loads(data)["session"]
            server_pid = os.getpid()
            pid = self.fork()
        except Exception:
            traceback.print_exc()
            channel.close()
            return
        if pid == 0:
            code = 255
            try:
                self.leave_server(server_pid)
                code = run_session(request, channel)
            except BaseException:
                traceback.print_exc()
            finally:
                with contextlib.suppress(BaseException):
                    sys.stderr.flush()
                os._exit(code & 0xFF)
        channel.close()
        self.children[pid] = None
        self.reap()

    def run_child(self, request: dict[str, Any], output_fd: int, reply: socket.socket, server_pid: int) -> None:
        code = 255
        try:
            self.leave_server(server_pid)
            os.dup2(output_fd, 1)
            os.dup2(output_fd, 2)
            os.close(output_fd)
            # Once this process leads its group, so that a stop can signal it from the first moment.
            reply.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
            reply.close()
            # Callbacks registered before the fork belong to the server; a CLI process runs only its own at exit.
            atexit._clear()
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            os.environ[request["group_env"]] = str(os.getpgrp())
            argv = [str(arg) for arg in request["argv"]]
            import dvc.__main__
            import dvc.cli

            # As `python -m dvc ARGS` shows it.
            sys.argv = [dvc.__main__.__file__, *argv]
            loaded = None if self.stages is None else self.stages.reproduction(argv)
            if loaded is not None:
                code = loaded()
            else:
                if self.stages is None:
                    _poll_repository_lock_faster()  # a session process did this already
                code = dvc.cli.main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = 255
        finally:
            # What a normal interpreter exit would do before tearing the modules down; then skip that part.
            with contextlib.suppress(BaseException):
                atexit._run_exitfuncs()
            with contextlib.suppress(BaseException):
                sys.stdout.flush()
            with contextlib.suppress(BaseException):
                sys.stderr.flush()
            os._exit(code & 0xFF)

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
                continue  # a session process: its worker sees its socket close
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
