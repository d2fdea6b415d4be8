"""Give one stage sandbox's network namespace user-mode networking (slirp4netns), then let the stage start.

Run by the launch script of workers/sandbox/network.py, orphaned (so its memory and CPU are not counted in the
stage's resource figures), with the worker's interpreter in isolated mode without site (``-I -S``): standard
library only, nothing of the service is imported.

    network_helper.py FOLDER STAGE_PID BLOCKED SLIRP4NETNS NSENTER IP

FOLDER holds two FIFOs the launch script opens for bubblewrap (``info``: bwrap's ``--info-fd``, which names the
sandbox's first process; ``block``: its ``--block-fd``, on which the sandbox waits before it runs the command).
STAGE_PID is bwrap's own process (the launch script execs it). BLOCKED: comma-separated IPv4 networks made
unreachable inside the namespace (the host's own addresses, the networks it is attached to, private ranges) before
the stage starts; the stage has no capabilities to change them back.

The stage starts only once the network is set up; if that fails, the reason goes to the stage's log and the stage
is killed (its status 137). When bwrap ends, slirp4netns is told to stop (its exit FD) and FOLDER is removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time

SETUP_SECONDS = 30
MTU = "65520"
TAP = "tap0"
LOOPBACK_SECONDS = 2.0


def main(argv: list[str]) -> int:
    folder, stage, blocked, slirp4netns, nsenter, ip = argv
    stage_pid = int(stage)
    os.chdir("/")  # not the stage's workspace: this helper and slirp4netns hold nothing of it
    # The stage's whole process group gets SIGTERM or SIGINT when it is stopped: this helper still cleans up.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    # A launch script that died before opening the FIFOs would leave the opens below waiting for ever.
    signal.signal(signal.SIGALRM, lambda *_: _give_up(folder, stage_pid, "timed out setting up the network"))
    signal.alarm(SETUP_SECONDS)
    try:
        watch = os.pidfd_open(stage_pid)
    except ProcessLookupError:
        shutil.rmtree(folder, ignore_errors=True)
        return 0
    # The same order as the launch script's opens (each open of a FIFO waits for the other end).
    info = os.open(os.path.join(folder, "info"), os.O_RDONLY | os.O_CLOEXEC)
    block = os.open(os.path.join(folder, "block"), os.O_WRONLY | os.O_CLOEXEC)
    sandbox_pid = _child_pid(info)
    os.close(info)
    if sandbox_pid is None:
        return _give_up(folder, stage_pid, "bubblewrap did not say which process runs the sandbox")
    _wait_for_loopback(sandbox_pid)
    ready_read, ready_write = os.pipe()
    exit_read, exit_write = os.pipe()
    os.set_inheritable(exit_write, False)
    command = [
        slirp4netns,
        "--configure",
        f"--mtu={MTU}",
        # Else the gateway address (10.0.2.2) is the host's loopback, where the service's MongoDB and Redis listen.
        "--disable-host-loopback",
        f"--ready-fd={ready_write}",
        f"--exit-fd={exit_read}",
    ]
    if os.geteuid() != 0:  # bwrap made a user namespace of the worker's own user: join it too
        command.append(f"--userns-path=/proc/{sandbox_pid}/ns/user")
    try:
        slirp = subprocess.Popen(
            [*command, str(sandbox_pid), TAP],
            pass_fds=(ready_write, exit_read),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=False,
        )
    except OSError as error:
        return _give_up(folder, stage_pid, f"slirp4netns did not start: {error}")
    os.close(ready_write)
    os.close(exit_read)
    ready = os.read(ready_read, 1)
    os.close(ready_read)
    if not ready:
        why = slirp.stderr.read().decode(errors="replace").strip()[-300:] if slirp.stderr else ""
        return _give_up(folder, stage_pid, f"slirp4netns failed: {why or 'no detail'}")
    refused = _block(sandbox_pid, blocked, nsenter, ip)
    if refused is not None:
        os.close(exit_write)
        return _give_up(folder, stage_pid, refused)
    signal.alarm(0)
    os.write(block, b"1")
    os.close(block)
    # Nothing more to say: the stage's output pipe is not held open by this helper once the stage ends.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    # Until bwrap ends (the stage with it), then slirp4netns reads the end of its exit FD and stops.
    select.select([watch], [], [])
    os.close(exit_write)
    try:
        slirp.wait(timeout=SETUP_SECONDS)
    except subprocess.TimeoutExpired:
        slirp.kill()
    shutil.rmtree(folder, ignore_errors=True)
    return 0


def _child_pid(info: int) -> int | None:
    """The ``child-pid`` of bwrap's ``--info-fd`` JSON (read until a whole object has arrived)."""
    data = b""
    while True:
        chunk = os.read(info, 4096)
        if not chunk:
            break
        data += chunk
        try:
            value = json.loads(data)
        except ValueError:
            continue
        pid = value.get("child-pid") if isinstance(value, dict) else None
        return pid if isinstance(pid, int) else None
    return None


def _wait_for_loopback(sandbox_pid: int) -> None:
    """Until bwrap has brought up the sandbox's loopback (its netlink requests fail when slirp4netns configures the
    namespace at the same moment: "bwrap: loopback: Failed RTM_NEWADDR"). Seen in the namespace's own /proc/net:
    ``::1`` on ``lo`` once it is up; without IPv6, its 127.0.0.1 (the address comes just before the link is up)."""
    deadline = time.monotonic() + LOOPBACK_SECONDS
    ipv6 = os.path.exists("/proc/net/if_inet6")
    while time.monotonic() < deadline:
        try:
            if ipv6:
                with open(f"/proc/{sandbox_pid}/net/if_inet6") as addresses:
                    if any(line.split()[-1:] == ["lo"] for line in addresses):
                        return
            else:
                with open(f"/proc/{sandbox_pid}/net/fib_trie") as table:
                    if "127.0.0.1" in table.read():
                        return
        except OSError:
            return  # the sandbox is gone: slirp4netns will say so
        time.sleep(0.001)


def _block(sandbox_pid: int, blocked: str, nsenter: str, ip: str) -> str | None:
    """Make ``blocked`` unreachable in the sandbox's network namespace; why not, or None."""
    networks = [network for network in blocked.split(",") if network]
    if not networks:
        return None
    if os.geteuid() == 0:
        enter = [nsenter, f"--net=/proc/{sandbox_pid}/ns/net"]
    else:
        enter = [nsenter, f"--target={sandbox_pid}", "--user", "--net", "--preserve-credentials"]
    batch = "".join(f"route add unreachable {network}\n" for network in networks)
    result = subprocess.run(
        [*enter, "--", ip, "-4", "-batch", "-"],
        input=batch.encode(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    if result.returncode != 0:
        return f"could not close the host's networks to the stage: {result.stderr.decode(errors='replace')[-300:]}"
    return None


def _give_up(folder: str, stage_pid: int, why: str) -> int:
    """The stage does not start: its log says why, and bwrap (with the waiting sandbox) is killed."""
    sys.stderr.write(f"stage network: {why}\n")
    sys.stderr.flush()
    with contextlib.suppress(ProcessLookupError):
        os.kill(stage_pid, signal.SIGKILL)
    shutil.rmtree(folder, ignore_errors=True)
    os._exit(1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
