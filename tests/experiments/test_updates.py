"""experimentUpdates over a real WebSocket: the snapshot, then every state each experiment enters, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.conftest import GraphQLClient, MakeUser
from tests.experiments.fixtures import TABLE, prepared_pipeline, run_experiment
from tests.experiments.test_sweeps import run_sweep, sweep_now
from tests.stack import Stack
from tests.ws import subscribe

MakeProject = Callable[..., Awaitable[dict[str, Any]]]

UPDATES = """
subscription($s: ID, $p: ID) {
  experimentUpdates(sweepId: $s, pipelineId: $p) {
    snapshot
    experiments { id name state error metrics { entries { file key number } } }
  }
}
"""

ORDER = ["QUEUED", "RUNNING", "SUCCEEDED"]


def states_seen(updates: list[dict[str, Any]]) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for update in updates:
        for experiment in update["experiments"]:
            seen.setdefault(experiment["name"], []).append(experiment["state"])
    return seen


def score(experiment: dict[str, Any]) -> float | None:
    if experiment["metrics"] is None:
        return None
    (entry,) = [e for e in experiment["metrics"]["entries"] if e["key"] == "score"]
    number: float = entry["number"]
    return number


async def test_a_sweeps_updates_are_its_snapshot_then_every_state_change_in_order_with_results(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    _, pipeline_id = await prepared_pipeline(gql, make_project)
    grid = [{"key": "train.lr", "values": ["0.1", "0.2", "0.3"]}]
    # One at a time: the last one is still queued while the subscription starts.
    queued = await run_sweep(gql, pipeline_id, grid, max_parallel=1, name="watched")
    assert queued["__typename"] == "SweepQueued", queued
    sweep_id = queued["sweep"]["id"]

    async def collect() -> list[dict[str, Any]]:
        return [
            d["experimentUpdates"] async for d in subscribe(stack.base_url, UPDATES, {"s": sweep_id}, token=gql.token)
        ]

    updates = await asyncio.wait_for(collect(), 180)  # the stream completes by itself once the sweep has ended

    first, rest = updates[0], updates[1:]
    assert first["snapshot"] is True and all(u["snapshot"] is False for u in rest), updates
    names = ["watched-1", "watched-2", "watched-3"]
    assert [e["name"] for e in first["experiments"]] == names
    seen = states_seen(updates)
    for name in names:
        # From the state in the snapshot on, each later state once, in order, to the end.
        start = seen[name][0]
        assert seen[name] == ORDER[ORDER.index(start) :], (name, seen)
    assert seen["watched-3"] == ORDER, seen

    # The final update of each carries its results: those the table shows, and the metric follows the param.
    final = {e["name"]: e for u in rest for e in u["experiments"] if e["state"] == "SUCCEEDED"}
    assert {name: score(e) for name, e in final.items()} == {"watched-1": 1.0, "watched-2": 2.0, "watched-3": 3.0}
    assert all(score(e) is None for u in updates for e in u["experiments"] if e["state"] != "SUCCEEDED")
    sweep = await sweep_now(gql, sweep_id)
    assert sweep["state"] == "SUCCEEDED" and {e["id"]: e["state"] for e in sweep["experiments"]} == {
        e["id"]: "SUCCEEDED" for e in final.values()
    }
    table = (await gql.execute(TABLE, {"p": pipeline_id}))["experimentsTable"]
    assert {r["experiment"]["name"] for r in table["rows"]} == set(names)


async def test_a_pipelines_updates_follow_new_experiments_and_strangers_get_nothing(
    gql: GraphQLClient, make_project: MakeProject, make_user: MakeUser, stack: Stack
) -> None:
    _, pipeline_id = await prepared_pipeline(gql, make_project)
    received: list[dict[str, Any]] = []
    subscribed = asyncio.Event()

    async def collect() -> None:
        async for data in subscribe(stack.base_url, UPDATES, {"p": pipeline_id}, token=gql.token):
            received.append(data["experimentUpdates"])
            subscribed.set()
            if received[-1]["experiments"] and received[-1]["experiments"][-1]["state"] == "SUCCEEDED":
                return  # leaving closes the socket: the server ends the subscription

    following = asyncio.create_task(collect())
    await asyncio.wait_for(subscribed.wait(), 30)
    assert received == [{"snapshot": True, "experiments": []}]
    started = await run_experiment(gql, pipeline_id, set=[{"key": "train.lr", "value": "0.4"}], name="live")
    assert started["__typename"] == "ExperimentQueued", started
    await asyncio.wait_for(following, 120)
    assert states_seen(received) == {"live": ORDER}
    assert score(received[-1]["experiments"][-1]) == 4.0

    stranger = await make_user()
    with pytest.raises(AssertionError, match="not found"):
        async for _ in subscribe(stack.base_url, UPDATES, {"p": pipeline_id}, token=stranger.token):
            pass
    with pytest.raises(AssertionError, match="either sweepId or pipelineId"):
        async for _ in subscribe(stack.base_url, UPDATES, {}, token=gql.token):
            pass
