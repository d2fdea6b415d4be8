"""Sweeps on the real stack: the grid's product as experiments, at most maxParallel at once, cancelled as a whole."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.api.run_helpers import wait_for_run
from tests.conftest import GraphQLClient, workspace_of
from tests.experiments.fixtures import copies_left, dvc_experiments, prepared_pipeline, worktrees
from tests.stack import Stack
from tests.waiting import eventually

MakeProject = Callable[..., Awaitable[dict[str, Any]]]

SWEEP_FIELDS = """
  id name state maxParallel grid { file key values }
  counts { queued running succeeded failed cancelled timedOut }
  experiments { id name state runId error setParams { key value } }
"""

RUN_SWEEP = f"""
mutation($p: ID!, $grid: [SweepAxisInput!]!, $max: Int!, $name: String) {{
  runSweep(pipelineId: $p, grid: $grid, maxParallel: $max, name: $name) {{
    __typename
    ... on SweepQueued {{ sweep {{ {SWEEP_FIELDS} }} }}
    ... on Error {{ message }}
    ... on ValidationError {{ issues {{ path message }} }}
  }}
}}
"""

SWEEP = f"query($id: ID!) {{ sweep(id: $id) {{ __typename ... on Sweep {{ {SWEEP_FIELDS} }} }} }}"

CANCEL_SWEEP = """
mutation($id: ID!) {
  cancelSweep(id: $id) { __typename ... on SweepCancelled { sweep { state } } ... on Error { message } }
}
"""

RUN_TIMES = "query($id: ID!) { run(id: $id) { ... on Run { startedAt finishedAt } } }"

SWEEP_TABLE = """
query($s: ID!, $sort: MetricSortInput) {
  experimentsTable(sweepId: $s, sortBy: $sort) {
    __typename ... on ExperimentsTable { rows { experiment { name } cells { number } } columns { kind key } }
  }
}
"""


async def run_sweep(gql: GraphQLClient, pipeline_id: str, grid: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    variables = {"p": pipeline_id, "grid": grid, "max": extra.pop("max_parallel", 0), **extra}
    result: dict[str, Any] = (await gql.execute(RUN_SWEEP, variables))["runSweep"]
    return result


async def sweep_now(gql: GraphQLClient, sweep_id: str) -> dict[str, Any]:
    sweep: dict[str, Any] = (await gql.execute(SWEEP, {"id": sweep_id}))["sweep"]
    return sweep


async def sweep_finished(gql: GraphQLClient, sweep_id: str, *, seconds: float = 240) -> dict[str, Any]:
    async def ended() -> dict[str, Any] | None:
        sweep: dict[str, Any] = (await gql.execute(SWEEP, {"id": sweep_id}))["sweep"]
        return sweep if sweep["state"] not in ("QUEUED", "RUNNING") else None

    return await eventually(ended, seconds=seconds, what=f"sweep {sweep_id} ending", every=0.2)


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    moments = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, change in moments:
        running += change
        peak = max(peak, running)
    return peak


async def test_a_sweep_runs_the_grid_in_parallel_up_to_its_limit(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, tmp_path: Path
) -> None:
    project_id, pipeline_id = await prepared_pipeline(gql, make_project)
    workspace = workspace_of(stack, project_id)
    grid = [{"key": "train.lr", "values": ["0.05", "0.1", "0.2", "0.4"]}, {"key": "pause", "values": ["2"]}]
    queued = await run_sweep(gql, pipeline_id, grid, max_parallel=2, name="lrs")
    assert queued["__typename"] == "SweepQueued", queued
    assert [e["name"] for e in queued["sweep"]["experiments"]] == ["lrs-1", "lrs-2", "lrs-3", "lrs-4"]
    assert [e["setParams"] for e in queued["sweep"]["experiments"]][3] == [
        {"key": "train.lr", "value": "0.4"},
        {"key": "pause", "value": "2"},
    ]

    sweep = await sweep_finished(gql, queued["sweep"]["id"])
    assert sweep["state"] == "SUCCEEDED", sweep
    assert sweep["counts"] == {"queued": 0, "running": 0, "succeeded": 4, "failed": 0, "cancelled": 0, "timedOut": 0}
    runs = [(await gql.execute(RUN_TIMES, {"id": e["runId"]}))["run"] for e in sweep["experiments"]]
    intervals = [(datetime.fromisoformat(r["startedAt"]), datetime.fromisoformat(r["finishedAt"])) for r in runs]
    assert most_at_once(intervals) == 2, intervals  # in parallel, and never more than the limit

    sort = {"file": "metrics.json", "key": "score"}
    table = (await gql.execute(SWEEP_TABLE, {"s": sweep["id"], "sort": sort}))["experimentsTable"]
    assert [r["experiment"]["name"] for r in table["rows"]] == ["lrs-4", "lrs-3", "lrs-2", "lrs-1"]

    listed = dvc_experiments(workspace, tmp_path)
    lrs = {
        name: listed[name]["params"]["params.yaml"]["data"]["train"]["lr"] for name in listed if name.startswith("lrs-")
    }
    assert lrs == {"lrs-1": 0.05, "lrs-2": 0.1, "lrs-3": 0.2, "lrs-4": 0.4}
    assert not [c for c in copies_left(stack) if c in {e["id"] for e in sweep["experiments"]}]
    assert worktrees(workspace) == [str(workspace)]


async def test_a_sweep_is_cancelled_as_a_whole(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, tmp_path: Path
) -> None:
    project_id, pipeline_id = await prepared_pipeline(gql, make_project)
    workspace = workspace_of(stack, project_id)
    grid = [{"key": "train.lr", "values": ["0.05", "0.1", "0.2"]}, {"key": "pause", "values": ["120"]}]
    queued = await run_sweep(gql, pipeline_id, grid, max_parallel=1, name="slow")
    assert queued["__typename"] == "SweepQueued", queued
    sweep_id = queued["sweep"]["id"]
    try:
        # Whichever experiment took the one slot first (arq picks the jobs' order): its training runs.
        async def running_experiments() -> list[dict[str, Any]]:
            return [e for e in (await sweep_now(gql, sweep_id))["experiments"] if e["state"] == "RUNNING"]

        running = await eventually(running_experiments, seconds=90, what="an experiment of the sweep running")
        await wait_for_run(
            gql,
            running[0]["runId"],
            lambda r: any(s["name"] == "train" and s["state"] == "RUNNING" for s in r["stages"]),
        )
        # One slot: the other two wait.
        sweep = await sweep_now(gql, sweep_id)
        assert sweep["state"] == "RUNNING" and sweep["counts"]["queued"] == 2, sweep
    finally:
        cancelled = (await gql.execute(CANCEL_SWEEP, {"id": sweep_id}))["cancelSweep"]
    assert cancelled["__typename"] == "SweepCancelled", cancelled
    sweep = await sweep_finished(gql, sweep_id, seconds=30)
    assert sweep["state"] == "CANCELLED", sweep
    assert sweep["counts"]["cancelled"] == 3, sweep
    ids = {e["id"] for e in sweep["experiments"]}
    await eventually(
        lambda: not ids & set(copies_left(stack)) and worktrees(workspace) == [str(workspace)],
        seconds=30,
        what="the sweep's copies removed",
    )
    assert not [name for name in dvc_experiments(workspace, tmp_path) if name.startswith("slow-")]


async def test_a_bad_grid_is_refused_and_nothing_is_stored(
    gql: GraphQLClient, make_project: MakeProject, mongo: Any
) -> None:
    _, pipeline_id = await prepared_pipeline(gql, make_project)
    bad = [
        ([], "grid"),
        ([{"key": "train.lr", "values": []}], "grid[0].values"),
        (
            [
                {"key": "train.lr", "values": [str(n) for n in range(11)]},
                {"key": "pause", "values": list("0123456789")},
            ],
            "grid",
        ),
        ([{"key": "train.nope", "values": ["1"]}], "setParams"),
        ([{"key": "train.lr", "values": ["1", "1"]}], "grid[0].values"),
    ]
    for grid, path in bad:
        answer = await run_sweep(gql, pipeline_id, grid)
        assert answer["__typename"] == "ValidationError", (grid, answer)
        assert any(issue["path"].startswith(path) for issue in answer["issues"]), (grid, answer)
    too_wide = await run_sweep(gql, pipeline_id, [{"key": "train.lr", "values": ["1"]}], max_parallel=1000)
    assert too_wide["__typename"] == "ValidationError", too_wide
    assert mongo.sweeps.count_documents({"pipeline_id": pipeline_id}) == 0
    assert mongo.experiments.count_documents({"pipeline_id": pipeline_id}) == 0
