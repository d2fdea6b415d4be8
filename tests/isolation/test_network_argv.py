"""A stage network (workers/sandbox/network.py) without the stack: the launch prefix, the networks closed to a stage,
and a real sandbox with its network behind the stage shell: exit codes, signals and output as without one, the
sandbox's network set up before the command starts, and nothing of it left once the command ends."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.isolation.test_sandbox_argv import MiB, sandboxed, stage_shell  # noqa: F401 (fixtures)
from tests.waiting import eventually
from workers.execution import shell
from workers.sandbox import SANDBOX_ARGV_ENV, encode
from workers.sandbox.argv import SandboxSpec, build_argv
from workers.sandbox.network import CLOSED_NETWORKS, DNS, LAUNCH, blocked_networks, host_addresses, with_network


def test_the_launch_prefix_runs_bwrap_behind_the_helper_with_its_own_resolver() -> None:
    prefix = build_argv(SandboxSpec(workspace=Path("/srv/ws/p1"), uid=65534))

    launched = with_network(prefix)

    assert launched[:4] == ["/bin/sh", "-c", LAUNCH, "stage-network"]
    blocked, bwrap, options = launched[6], launched[10], launched[11:]
    assert bwrap == prefix[0] == "/usr/bin/bwrap"
    assert "--unshare-net" in options
    if not os.path.islink("/etc/resolv.conf"):
        # The resolver is slirp4netns's forwarder, mounted over the host's /etc/resolv.conf right after /etc.
        etc = next(i for i in range(len(options)) if options[i : i + 3] == ["--ro-bind", "/etc", "/etc"]) + 3
        assert options[etc : etc + 5] == ["--perms", "0644", "--ro-bind-data", "5", "/etc/resolv.conf"]
        assert f"nameserver {DNS}" in LAUNCH
        options = options[:etc] + options[etc + 5 :]
    # The rest of the sandbox is exactly the one without network.
    assert options == prefix[1:]
    assert blocked.split(",") == list(blocked_networks())


def test_the_hosts_addresses_its_networks_and_private_ranges_are_closed() -> None:
    closed = [ipaddress.IPv4Network(n) for n in blocked_networks()]

    for network in CLOSED_NETWORKS:
        assert any(ipaddress.IPv4Network(network).subnet_of(c) for c in closed), network
    addresses = host_addresses()
    assert addresses, "ip -j addr found no IPv4 address"
    for address in addresses:
        assert any(address.ip in c for c in closed), address
        assert any(address.network.subnet_of(c) for c in closed), address
    # Outside addresses stay open: what a project allowed a network is for.
    assert not any(ipaddress.IPv4Address("151.101.0.223") in c for c in closed)


def slirp_processes() -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "slirp4netns":
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


def run_networked(
    stage_shell: Path,  # noqa: F811
    command: str,
    prefix: list[str],
    cwd: Path,
    tmp: Path,
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "TMPDIR": str(tmp),
        SANDBOX_ARGV_ENV: encode(with_network(prefix)),
        shell.RUSAGE_FILE_ENV: str(tmp / "usage.jsonl"),
    }
    return subprocess.run(
        [str(stage_shell), "-c", command], env=env, cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )


async def test_a_networked_sandbox_keeps_exit_codes_output_and_usage_and_leaves_nothing(
    stage_shell: Path,  # noqa: F811
    sandboxed: tuple[Path, list[str]],  # noqa: F811
    tmp_path: Path,
) -> None:
    ws, prefix = sandboxed
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    before = slirp_processes()
    allocate = "python3 -c \"b = bytearray(64 << 20); b[::4096] = b'x' * (len(b) // 4096)\""

    routes = run_networked(stage_shell, "cat /proc/net/route; echo out > /dev/stdout", prefix, ws, tmp)
    codes = [run_networked(stage_shell, c, prefix, ws, tmp).returncode for c in (allocate, "echo x; exit 3")]
    signalled = [run_networked(stage_shell, c, prefix, ws, tmp).returncode for c in ("kill -TERM $$", "kill -KILL $$")]
    descriptors = run_networked(stage_shell, "ls /proc/$$/fd", prefix, ws, tmp)

    # The command started with its network up (a default route through slirp4netns's tap device) and the host's
    # networks closed, and its output reached the stage shell's pipes.
    assert routes.returncode == 0, routes.stderr
    assert "tap0\t00000000" in routes.stdout and routes.stdout.endswith("out\n"), routes.stdout
    assert codes == [0, 3] and signalled == [128 + 15, 128 + 9]
    ended = [json.loads(line) for line in (tmp / "usage.jsonl").read_text().splitlines() if "exit_code" in line]
    assert [line["exit_code"] for line in ended] == [0, 0, 3, 143, 137, 0]
    # Only stdin, stdout and stderr reach the command: not the stage shell's executable (fd 3, the sandbox's PID 1),
    # nor the launch script's FIFOs to the helper, nor the resolver's data.
    assert descriptors.stdout.split() == ["0", "1", "2"], descriptors
    assert 64 * MiB <= ended[1]["maxrss_kib"] * 1024 < 200 * MiB
    # slirp4netns and the helper's FIFO folder end with each stage.
    await eventually(lambda: not (slirp_processes() - before), seconds=10, what="no slirp4netns left")
    await eventually(
        lambda: [p.name for p in tmp.iterdir()] == ["usage.jsonl"], seconds=10, what=f"nothing left in {tmp}"
    )


def test_a_worker_without_slirp4netns_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.sandbox import network

    monkeypatch.setattr(network, "SLIRP4NETNS", "/nonexistent/slirp4netns")
    with pytest.raises(network.NetworkUnavailable, match="slirp4netns"):
        with_network(build_argv(SandboxSpec(workspace=Path("/srv/ws/p1"), uid=65534)))
