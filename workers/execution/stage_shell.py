"""The shell DVC runs stage commands with: measures each command and keeps the stage's group from outliving DVC.

Not imported by the worker: ``shell.py`` copies this file behind a ``#!python -IS`` line, so it must use the standard
library only, and only its fast-loading parts (it runs once per stage command and once per launch).

Two ways to call it:

- ``stage-shell -c CMD``, as DVC calls ``$SHELL`` (dvc/stage/run.py ``_make_cmd``): runs ``/bin/sh -c CMD`` as its
  child in the same process group (behind the prefix in ``$STAGE_SANDBOX_ARGV`` when set: the stage's sandbox), waits
  for it with ``wait4`` and appends its resource usage as one JSON line to the file named by ``$STAGE_RUSAGE_FILE``,
  then exits with the child's status as a shell does (128+N for signal N).
- ``stage-shell --exec PARENT_PID PROGRAM ARG...``: the launcher's trampoline for the DVC process; sets
  PR_SET_PDEATHSIG=SIGKILL (so DVC dies with the worker), ignores SIGTERM (so DVC outlives its command on a stop and
  reports it, see launcher.py), marks its group as a stage's for the stage shell, then execs PROGRAM. A trampoline
  rather than ``preexec_fn``: the worker has threads.
"""

from __future__ import annotations

import os
import sys
import time

# Start-up time counts (this runs for every command): not `typing.TYPE_CHECKING`, as importing typing or
# collections.abc costs milliseconds, and the C `_signal` rather than `signal`, which wraps it in slow-to-import enums.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from collections.abc import Callable
else:
    import _signal as signal

RUSAGE_FILE_ENV = "STAGE_RUSAGE_FILE"
LIMITS_ENV = "STAGE_LIMITS"
"""``cpu=S,as=B,nofile=N,fsize=B``: resource limits for the command, applied in its process before exec."""
SANDBOX_ENV = "STAGE_SANDBOX_ARGV"
"""A prefix for the command (the sandbox, workers/sandbox/): its arguments separated by the ASCII unit separator."""
SANDBOX_SEPARATOR = "\x1f"
# Set by the trampoline to the group it leads: only inside such a group may the stage shell kill its group.
GROUP_ENV = "STAGE_PROCESS_GROUP"
SHELL = "/bin/sh"
PR_SET_PDEATHSIG = 1
# The command sees the shell that runs it, not this wrapper.
CHILD_SHELL_ENV = "SHELL"
# Back to their defaults in the command's process, as a shell would start it: ignored signals stay ignored across exec,
# and Python ignores SIGPIPE and SIGXFSZ at start-up, DVC's trampoline SIGTERM, this wrapper SIGTERM and SIGINT.
RESET_IN_CHILD = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


# Loaded once, before any fork: importing ctypes is most of this script's start-up after the interpreter's own.
_prctl = _load_prctl()


def set_parent_death_signal(signum: int) -> bool:
    """Ask Linux to send ``signum`` to this process when its parent dies; False where that is not available."""
    return _prctl is not None and _prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0


def kill_own_group(signum: int = 0, frame: object = None) -> None:
    # The launcher's process group is the stage: DVC, this wrapper, the command and whatever it started.
    os.killpg(0, signal.SIGKILL)


def exec_guarded(parent_pid: int, argv: list[str]) -> None:
    set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent_pid:
        # The parent died before the death signal was armed.
        os._exit(128 + signal.SIGKILL)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.environ[GROUP_ENV] = str(os.getpgrp())
    os.execv(argv[0], argv)


def apply_limits(spec: str) -> None:
    import resource

    names = {
        "cpu": resource.RLIMIT_CPU,
        "as": resource.RLIMIT_AS,
        "nofile": resource.RLIMIT_NOFILE,
        "fsize": resource.RLIMIT_FSIZE,
    }
    for item in filter(None, spec.split(",")):
        key, _, raw = item.partition("=")
        which, wanted = names[key], int(raw)
        _, hard = resource.getrlimit(which)
        # Never above the worker's own hard limit: an unprivileged process may only lower it.
        value = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(which, (value, value))


def run_command(command: str) -> int:
    report = os.environ.pop(RUSAGE_FILE_ENV, None)
    limits = os.environ.pop(LIMITS_ENV, None)
    sandbox = os.environ.pop(SANDBOX_ENV, None)
    argv = [*(sandbox.split(SANDBOX_SEPARATOR) if sandbox else ()), SHELL, "-c", command]
    if os.environ.pop(GROUP_ENV, None) == str(os.getpgrp()):
        # DVC dying (a SIGKILL from the worker's death, or from a stop) takes the whole group with it, grandchildren
        # included; the command's own death signal covers only the shell.
        signal.signal(signal.SIGHUP, kill_own_group)
        if set_parent_death_signal(signal.SIGHUP) and os.getppid() != os.getpgrp():
            # DVC leads the group and is our parent: it died before the death signal was armed.
            kill_own_group()
    # Like a shell waiting for its foreground job: let the command handle these and report how it ended.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    started = time.time()
    if report:
        _append(report, f'{{"started": {started:.6f}}}\n')
    env = dict(os.environ)
    env[CHILD_SHELL_ENV] = SHELL
    wrapper_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            for signum in RESET_IN_CHILD:
                signal.signal(signum, signal.SIG_DFL)
            set_parent_death_signal(signal.SIGKILL)
            if limits:
                apply_limits(limits)
            if os.getppid() == wrapper_pid:
                os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    code = 128 - code if code < 0 else code
    if report:
        ended = time.time()
        _append(
            report,
            f'{{"started": {started:.6f}, "ended": {ended:.6f}, "exit_code": {code}, "maxrss_kib": {usage.ru_maxrss},'
            f' "utime": {usage.ru_utime:.6f}, "stime": {usage.ru_stime:.6f}}}\n',
        )
    return code


def _append(path: str, line: str) -> None:
    # One write on an O_APPEND descriptor: lines from concurrent commands never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "-c":
        return run_command(argv[2])
    if len(argv) >= 4 and argv[1] == "--exec":
        exec_guarded(int(argv[2]), argv[3:])
    sys.stderr.write(f"usage: {argv[0]} -c COMMAND | --exec PARENT_PID PROGRAM [ARG...]\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
