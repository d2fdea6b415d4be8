"""Network for the stages of a project whose owner allowed it (``setProjectNetwork``), on top of the sandbox prefix.

A sandboxed stage has its own network namespace with only a loopback (argv.py). With network allowed, the same
namespace gets user-mode networking from slirp4netns (Debian package ``slirp4netns``): a tap device whose traffic
slirp4netns, outside, turns into ordinary sockets of the worker. What stays out of reach:

- the host's loopback, where the service's MongoDB and Redis listen (``--disable-host-loopback``: the gateway
  address 10.0.2.2 is not the host any more; 127.0.0.1 inside is the namespace's own loopback);
- the host's own addresses and every network it is attached to (where compose's MongoDB and Redis, or another
  machine's services, listen), the private, shared and link-local ranges (cloud metadata at 169.254.169.254
  included): routes of type ``unreachable`` in the namespace, added before the stage starts; the stage has no
  capabilities to remove them. IPv6 is not offered at all.

DNS goes through slirp4netns's forwarder (10.0.2.3), which asks the host's resolvers: the sandbox's
/etc/resolv.conf names it (unless the host's is a symbolic link, which is then shown as it is).

pasta (Debian package ``passt``) was tried first and does not fit a root worker: it drops to ``nobody`` and then
cannot open the sandbox's namespaces (``Couldn't open user namespace /proc/PID/ns/user: Permission denied``), and a
namespace it creates itself is a user namespace whose only id is ``nobody``, so the stage's own user cannot exist.

The prefix becomes ``/bin/sh -c LAUNCH ... bwrap ...``: the launch script starts network_helper.py orphaned (so its
memory and CPU are not the stage's figures), then execs bwrap with ``--info-fd`` (which names the sandbox's process to
the helper) and ``--block-fd`` (the sandbox waits on it until the helper has set the network up).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

SLIRP4NETNS = "/usr/bin/slirp4netns"
NSENTER = "/usr/bin/nsenter"
IP = "/usr/bin/ip"
HELPER = Path(__file__).with_name("network_helper.py")
DNS = "10.0.2.3"
"""slirp4netns's DNS forwarder."""
SLIRP_NETWORK = ipaddress.IPv4Network("10.0.2.0/24")
"""slirp4netns's own network inside the namespace (its default ``--cidr``): never blocked."""
RESOLV_CONF = "/etc/resolv.conf"
RESOLV_FD = "5"
CLOSED_NETWORKS = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/3",
)
"""Never reachable from a stage: this network, private, shared (carrier NAT), loopback, link-local, IETF, private,
benchmarking, multicast and reserved ranges (RFC 6890)."""

LAUNCH = f"""\
d=$(mktemp -d "${{TMPDIR:-/tmp}}/stage-network.XXXXXX") || exit 125
mkfifo "$d/info" "$d/block" || {{ rm -rf "$d"; exit 125; }}
python=$1 helper=$2 blocked=$3 slirp=$4 nsenter=$5 ip=$6 bwrap=$7
shift 7
( "$python" -I -S "$helper" "$d" $$ "$blocked" "$slirp" "$nsenter" "$ip" </dev/null >/dev/null & )
exec 6>"$d/info" 7<"$d/block" {RESOLV_FD}<<EOF
nameserver {DNS}
EOF
exec "$bwrap" --info-fd 6 --block-fd 7 "$@"
"""
"""The launch script: its own process becomes bwrap (``$$`` is bwrap's pid for the helper). The FIFOs are opened in
the helper's order (each open waits for the other end), on descriptors 6 and 7: 3 is the stage shell's own
executable, which bwrap runs as the sandbox's PID 1 (argv.INIT)."""

MISSING = "network for stages needs {tool} (Debian package {package}); this worker does not have it"


class NetworkUnavailable(RuntimeError):
    """A stage of a network-allowed project cannot get its network on this worker."""


def missing_tool() -> str | None:
    """Why this worker cannot give stages a network, or None."""
    for tool, package in ((SLIRP4NETNS, "slirp4netns"), (NSENTER, "util-linux"), (IP, "iproute2")):
        if not os.access(tool, os.X_OK):
            return MISSING.format(tool=tool, package=package)
    return None


def with_network(prefix: list[str]) -> list[str]:
    """The launch prefix giving the sandbox that ``prefix`` (argv.build_argv's) builds a network; raises
    NetworkUnavailable when this worker lacks a tool for it."""
    missing = missing_tool()
    if missing is not None:
        raise NetworkUnavailable(missing)
    bwrap, *options = prefix
    if not os.path.islink(RESOLV_CONF):
        options = _after_etc(options, ["--perms", "0644", "--ro-bind-data", RESOLV_FD, RESOLV_CONF])
    return [
        "/bin/sh",
        "-c",
        LAUNCH,
        "stage-network",
        sys.executable,
        str(HELPER),
        ",".join(blocked_networks()),
        SLIRP4NETNS,
        NSENTER,
        IP,
        bwrap,
        *options,
    ]


def _after_etc(options: list[str], extra: list[str]) -> list[str]:
    """``extra`` right after the read-only mount of /etc (a later mount over one of its files), else before the
    end of bwrap's options."""
    for index in range(len(options) - 2):
        if options[index : index + 3] == ["--ro-bind", "/etc", "/etc"]:
            return [*options[: index + 3], *extra, *options[index + 3 :]]
    end = options.index("--")
    return [*options[:end], *extra, *options[end:]]


@functools.cache
def blocked_networks() -> tuple[str, ...]:
    """CLOSED_NETWORKS, the host's own IPv4 addresses and the networks it is attached to (read once per worker
    process with ``ip -j addr``), merged, without slirp4netns's own network."""
    networks = [ipaddress.IPv4Network(n) for n in CLOSED_NETWORKS]
    for address in host_addresses():
        networks += [address.network, ipaddress.IPv4Network(address.ip)]
    kept: list[ipaddress.IPv4Network] = []
    for network in ipaddress.collapse_addresses(networks):
        if network.overlaps(SLIRP_NETWORK) and network.supernet_of(SLIRP_NETWORK):
            # A route to the wider network stays: the namespace's own 10.0.2.0/24 is more specific and wins.
            kept.append(network)
        elif not network.overlaps(SLIRP_NETWORK):
            kept.append(network)
    return tuple(str(n) for n in kept)


def host_addresses() -> list[ipaddress.IPv4Interface]:
    """The host's IPv4 addresses with their prefix lengths (loopback's included)."""
    try:
        result = subprocess.run([IP, "-4", "-j", "addr", "show"], capture_output=True, text=True, check=True)
        links = json.loads(result.stdout)
    except (OSError, subprocess.CalledProcessError, ValueError):
        return []
    found: list[ipaddress.IPv4Interface] = []
    for link in links:
        for info in link.get("addr_info", []):
            if info.get("family") == "inet" and "local" in info:
                found.append(ipaddress.IPv4Interface(f"{info['local']}/{info.get('prefixlen', 32)}"))
    return found
