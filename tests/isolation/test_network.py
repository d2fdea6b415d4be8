"""Network per project, against the real stack: off by default; allowed by its owner, a stage reaches an outside
address (pypi.org:443, reachable from this machine) but still not the service's MongoDB or Redis (the test stack's,
on the host's loopback), nor the host through slirp4netns's gateway, nor a port the test opens on the host's own
address, nor the cloud metadata address."""

from __future__ import annotations

import json
import shlex
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.pipeline_fixtures import create_pipeline, write_file
from tests.api.run_helpers import execute, finished
from tests.conftest import GraphQLClient, MakeUser, workspace_of
from tests.isolation.test_sandbox import PROBE, endpoint, new_project
from tests.stack import Stack

OUTSIDE = ("pypi.org", 443)
SLIRP_GATEWAY = "10.0.2.2"
METADATA = ("169.254.169.254", 80)
SET_NETWORK = """
mutation($p: ID!, $allowed: Boolean!) {
  setProjectNetwork(projectId: $p, allowed: $allowed) {
    __typename
    ... on NetworkChanged { project { id networkAllowed } }
    ... on Error { message }
  }
}
"""
NETWORK_OF = "query($p: ID!) { project(id: $p) { ... on Project { networkAllowed } } }"


def host_address() -> str:
    """The host's own address on its default route (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((OUTSIDE[0], OUTSIDE[1]))
        address: str = probe.getsockname()[0]
    return address


@pytest.fixture
def host_listener() -> Iterator[tuple[str, int]]:
    """A TCP port listening on every address of the host, as a careless service would."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("0.0.0.0", 0))
        server.listen()
        yield host_address(), server.getsockname()[1]


async def probe_connections(
    gql: GraphQLClient, stack: Stack, project_id: str, targets: list[tuple[str, int]]
) -> dict[str, Any]:
    """What a stage of the project reached (each probe in a pipeline and with an output of its own)."""
    plan = {"list": [], "read": [], "write": [], "connect": targets}
    await write_file(gql, project_id, "probe.py", PROBE)
    tag = uuid.uuid4().hex[:6]
    command = f"python3 probe.py {shlex.quote(json.dumps(plan))}; touch {tag}"
    written = await create_pipeline(
        gql, project_id, name=f"p{tag}", stages=[{"name": "s", "command": command, "outs": [tag]}]
    )
    assert written["__typename"] == "PipelineWritten", written
    run = await finished(gql, await execute(gql, written["pipeline"]["id"]))
    assert run["state"] == "SUCCEEDED", run
    report: dict[str, Any] = json.loads((workspace_of(stack, project_id) / "report.json").read_text())
    return report


async def test_a_project_has_no_network_unless_its_owner_allows_it(make_user: MakeUser, stack: Stack) -> None:
    alice = await make_user()
    project_id = await new_project(alice)
    shown = await alice.execute(NETWORK_OF, {"p": project_id})
    assert shown["project"] == {"networkAllowed": False}

    report = await probe_connections(alice, stack, project_id, [OUTSIDE])

    assert not report[f"connect {OUTSIDE[0]}:{OUTSIDE[1]}"]["ok"], report
    assert report["interfaces"]["value"] == ["lo"]


async def test_an_allowed_project_reaches_outside_but_not_the_service_or_its_host(
    make_user: MakeUser, stack: Stack, host_listener: tuple[str, int]
) -> None:
    alice = await make_user()
    project_id = await new_project(alice)
    changed = (await alice.execute(SET_NETWORK, {"p": project_id, "allowed": True}))["setProjectNetwork"]
    assert changed == {"__typename": "NetworkChanged", "project": {"id": project_id, "networkAllowed": True}}
    mongodb, redis = endpoint(stack.env["MONGODB_URL"]), endpoint(stack.env["REDIS_URL"])
    # The listener is really there for anyone on the host: the stage's failure below is the sandbox's doing.
    socket.create_connection(host_listener, 3).close()
    services = [mongodb, redis, (SLIRP_GATEWAY, mongodb[1]), (SLIRP_GATEWAY, redis[1]), host_listener, METADATA]

    report = await probe_connections(alice, stack, project_id, [OUTSIDE, *services])

    assert report[f"connect {OUTSIDE[0]}:{OUTSIDE[1]}"] == {"ok": True, "value": None}, report
    for host, port in services:
        assert not report[f"connect {host}:{port}"]["ok"], (host, port, report[f"connect {host}:{port}"])
    assert report["interfaces"]["value"] == ["lo", "tap0"]
    assert int(report["capabilities"]["value"], 16) == 0

    # Forbidden again: the next stage has no network.
    changed = (await alice.execute(SET_NETWORK, {"p": project_id, "allowed": False}))["setProjectNetwork"]
    assert changed["project"]["networkAllowed"] is False
    again = await probe_connections(alice, stack, project_id, [OUTSIDE])
    assert not again[f"connect {OUTSIDE[0]}:{OUTSIDE[1]}"]["ok"], again


async def test_only_an_owner_sets_the_network_and_nothing_changes_otherwise(make_user: MakeUser) -> None:
    alice, mallory = await make_user(), await make_user()
    project_id = await new_project(alice)

    refused = (await mallory.execute(SET_NETWORK, {"p": project_id, "allowed": True}))["setProjectNetwork"]
    missing = (await alice.execute(SET_NETWORK, {"p": "0" * 24, "allowed": True}))["setProjectNetwork"]

    assert refused["__typename"] == "NotFoundError" and missing["__typename"] == "NotFoundError"
    assert (await alice.execute(NETWORK_OF, {"p": project_id}))["project"] == {"networkAllowed": False}
