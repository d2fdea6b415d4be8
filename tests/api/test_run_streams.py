"""Busy runs followed live: batched updates, and many subscribers with their own documents on one run."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from app.domain.runs import EventType
from app.events import channels
from tests.api.pipeline_fixtures import create_pipeline
from tests.api.run_helpers import execute, follow, get_run
from tests.conftest import GraphQLClient
from tests.stack import Stack
from tests.ws import subscribe

MakeProject = Callable[..., Awaitable[dict[str, Any]]]

RUN_UPDATE_BATCHES = """
subscription($runId: ID!, $after: Int) {
  runUpdateBatches(runId: $runId, after: $after) {
    lastSeq
    updates { seq type runState stage stageState text offset }
  }
}
"""
LINES = 400
BRANCHES = ("a", "b", "c", "d")


def chatty_stage(name: str) -> dict[str, Any]:
    """A stage printing LINES numbered lines as fast as the shell can."""
    command = f"for i in $(seq 1 {LINES}); do echo {name}-line-$i; done; echo ok > {name}.txt"
    return {"name": name, "command": command, "outs": [f"{name}.txt"]}


async def busy_run(gql: GraphQLClient, make_project: MakeProject) -> str:
    project = await make_project()
    written = await create_pipeline(gql, project["id"], stages=[chatty_stage(b) for b in BRANCHES])
    assert written["__typename"] == "PipelineWritten", written
    return await execute(gql, written["pipeline"]["id"], maxParallel=len(BRANCHES))


async def follow_batches(stack: Stack, gql: GraphQLClient, run_id: str, *, after: int | None = None) -> list[Any]:
    batches: list[dict[str, Any]] = []

    async def collect() -> None:
        variables = {"runId": run_id, "after": after}
        async for data in subscribe(stack.base_url, RUN_UPDATE_BATCHES, variables, token=gql.token):
            batches.append(data["runUpdateBatches"])

    await asyncio.wait_for(collect(), 90)
    return batches


def stage_logs(updates: list[dict[str, Any]]) -> dict[str, str]:
    logs: dict[str, str] = {}
    for update in updates:
        if update["type"] == "LOG":
            assert len(logs.get(update["stage"], "").encode()) == update["offset"], "log chunks follow each other"
            logs[update["stage"]] = logs.get(update["stage"], "") + update["text"]
    return logs


async def test_batches_carry_every_update_of_a_busy_run_in_order_like_the_single_stream(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    run_id = await busy_run(gql, make_project)

    batches, singles = await asyncio.gather(follow_batches(stack, gql, run_id), follow(stack.base_url, gql, run_id))

    first, rest = batches[0], batches[1:]
    assert [u["type"] for u in first["updates"]] == ["SNAPSHOT"]
    updates = [u for b in rest for u in b["updates"]]
    start = first["lastSeq"]
    assert [u["seq"] for u in updates] == list(range(start + 1, start + 1 + len(updates))), "gap-free, in order"
    assert all(b["lastSeq"] == b["updates"][-1]["seq"] for b in rest)
    assert updates[-1]["type"] == "RUN_STATE" and updates[-1]["runState"] == "SUCCEEDED"
    for branch, log in stage_logs(updates).items():
        printed = [line for line in log.splitlines() if line.startswith(f"{branch}-line-")]
        assert printed == [f"{branch}-line-{i}" for i in range(1, LINES + 1)], f"{branch}: every line, in order"
    assert set(stage_logs(updates)) == set(BRANCHES)

    # The one-update-per-message stream carries the same updates (from wherever its snapshot started).
    by_seq = {u["seq"]: u for u in updates}
    single_events = singles[1:]
    assert single_events and all(
        {k: by_seq[u["seq"]][k] for k in u.keys() & by_seq[u["seq"]].keys()}
        == {k: u[k] for k in u.keys() & by_seq[u["seq"]].keys()}
        for u in single_events
        if u["seq"] in by_seq
    )
    assert single_events[-1]["seq"] == updates[-1]["seq"]

    run = await get_run(gql, run_id)
    assert run["state"] == "SUCCEEDED"


async def test_resuming_batches_after_a_seq_replays_exactly_what_followed_it(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    run_id = await busy_run(gql, make_project)
    whole = await follow_batches(stack, gql, run_id, after=0)  # from the very first event
    every = [u for b in whole[1:] for u in b["updates"]]
    assert [u["seq"] for u in every] == list(range(1, len(every) + 1))

    resumed = await follow_batches(stack, gql, run_id, after=every[9]["seq"])

    assert [u["type"] for u in resumed[0]["updates"]] == ["SNAPSHOT"]
    assert resumed[0]["updates"][0]["runState"] == "SUCCEEDED"
    assert [u for b in resumed[1:] for u in b["updates"]] == every[10:]


SELECTIONS = {
    "text": "runUpdates(runId: $runId, after: $after) { seq type text }",
    "states": "runUpdates(runId: $runId, after: $after) { seq stage stageState }",
    "aliased": "runUpdates(runId: $runId, after: $after) { n: seq kind: type }",
}


async def test_subscribers_of_one_run_each_get_their_own_selection(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    """Subscribers share each event's rendering only when they sent the same document: never a foreign shape."""
    run_id = await busy_run(gql, make_project)
    received: dict[str, list[dict[str, Any]]] = {}

    async def collect(label: str, selection: str, copy: int) -> None:
        query = f"subscription($runId: ID!, $after: Int) {{ {selection} }}"
        updates = [
            d["runUpdates"]
            async for d in subscribe(stack.base_url, query, {"runId": run_id, "after": 0}, token=gql.token)
        ]
        received[f"{label}-{copy}"] = updates

    await asyncio.wait_for(
        asyncio.gather(*(collect(label, s, copy) for label, s in SELECTIONS.items() for copy in range(2))), 90
    )

    shapes = {"text": {"seq", "type", "text"}, "states": {"seq", "stage", "stageState"}, "aliased": {"n", "kind"}}
    for name, updates in received.items():
        assert all(set(u) == shapes[name.split("-")[0]] for u in updates), name
    seqs = {name: [u.get("seq", u.get("n")) for u in updates[1:]] for name, updates in received.items()}
    assert len({tuple(s) for s in seqs.values()}) == 1, "every subscriber saw the same events"
    assert received["text-0"][1:] == received["text-1"][1:], "same events (the snapshots may differ in time)"
    logs = "".join(u["text"] for u in received["text-0"] if u["type"] == "LOG")
    assert all(f"{b}-line-{LINES}" in logs for b in BRANCHES)


async def test_catching_up_reads_the_recent_list_and_the_store_when_the_list_has_a_hole(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, mongo: Any
) -> None:
    """A run's recent messages in Redis answer a catch-up only when they hold every event after the cursor."""
    project = await make_project()
    stage = {"name": "talk", "command": "for i in 1 2 3; do echo line-$i; sleep 0.2; done", "outs": []}
    written = await create_pipeline(gql, project["id"], stages=[stage])
    run_id = await execute(gql, written["pipeline"]["id"])
    await follow_batches(stack, gql, run_id, after=0)  # to its end
    stored = list(mongo.run_events.find({"run_id": run_id}, {"_id": 0, "seq": 1, "type": 1, "text": 1}).sort("seq", 1))
    key = channels.run_recent(run_id)
    redis = Redis.from_url(stack.env["REDIS_URL"])
    try:
        # Every stored event was pushed, in order, with its publication.
        cached = [e for raw in await redis.lrange(key, 0, -1) for e in json.loads(raw)]  # type: ignore[misc]
        assert [e["seq"] for e in cached] == [e["seq"] for e in stored]

        async def replayed() -> list[tuple[int, str | None]]:
            batches = await follow_batches(stack, gql, run_id, after=0)
            return [(u["seq"], u["text"]) for b in batches[1:] for u in b["updates"]]

        expected = [(e["seq"], e.get("text")) for e in stored]
        assert await replayed() == expected

        # The list is what answered: a marked copy of its messages is what a replay shows.
        raws = await redis.lrange(key, 0, -1)  # type: ignore[misc]
        marked = [
            [{**e, "text": "cached"} if e["type"] == EventType.LOG else e for e in json.loads(raw)] for raw in raws
        ]
        await redis.delete(key)
        await redis.rpush(key, *(json.dumps(m) for m in marked))  # type: ignore[misc]
        assert await replayed() == [
            (e["seq"], "cached" if e["type"] == EventType.LOG else e.get("text")) for e in stored
        ]

        # A hole at its start (trimmed, or lost by Redis): the store answers, unmarked.
        await redis.lpop(key)  # type: ignore[misc]
        assert await replayed() == expected
        await redis.delete(key)
        assert await replayed() == expected
    finally:
        await redis.aclose()
