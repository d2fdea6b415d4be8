"""`status` while a run holds the workspace: many concurrent queries, each answered at once from what is known.

A one-stage pipeline whose command waits for a file the harness writes holds the workspace for as long as the
harness needs; meanwhile N concurrent `pipeline { status }` queries are sent and each is timed. The baseline is the
same N concurrent queries of the same pipeline's stored fields (`pipeline { stages }`), the API's own floor for a
query that needs no worker, measured in the same round.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.context import Context
from bench.gql import EXECUTE, RUN_STATE
from bench.results import Row
from bench.stats import percentile
from bench.workspaces import create_pipeline, new_project, write_file

P99_TARGET_MS = 200.0
FULL_QUERIES = 50
SMOKE_QUERIES = 5
HOLD_DEADLINE_SECONDS = 300.0

HOLDER = """\
import os, sys, time
deadline = time.time() + float(sys.argv[1])
while not os.path.exists("busy/release") and time.time() < deadline:
    time.sleep(0.02)
os.makedirs("busy/out", exist_ok=True)
open("busy/out/held.txt", "w").write(str(time.time()))
"""

BUSY_STATUS = """
query($id: ID!) {
  pipeline(id: $id) {
    ... on Pipeline {
      status {
        __typename
        ... on PipelineStatus { upToDate stale checkedAt stages { name upToDate } }
        ... on Error { message }
      }
    }
  }
}
"""

STORED = """
query($id: ID!) { pipeline(id: $id) { ... on Pipeline { id version stages { name command deps outs } } } }
"""


async def run(ctx: Context) -> list[Row]:
    queries = SMOKE_QUERIES if ctx.sizes.smoke else FULL_QUERIES
    project_id = await new_project(ctx.gql)
    await write_file(ctx.gql, project_id, "hold.py", HOLDER)
    command = f"python3 hold.py {HOLD_DEADLINE_SECONDS:g}"
    stages = [{"name": "hold", "command": command, "deps": ["hold.py"], "outs": ["busy/out/held.txt"]}]
    pipeline_id = await create_pipeline(ctx.gql, project_id, "busy", stages)
    release = ctx.workspace(project_id) / "busy" / "release"

    idle = await _status(ctx, pipeline_id)  # what is known before the run: DVC's own answer, stored
    ours: list[float] = []
    floor: list[float] = []
    stale_answers = 0
    checked: set[str] = set()
    rounds = 1 if ctx.sizes.smoke else ctx.sizes.rounds
    for _ in range(rounds):
        release.unlink(missing_ok=True)
        run_id = await _start(ctx, pipeline_id)
        try:
            await _until(ctx, run_id, lambda run: _stage_state(run, "hold") == "RUNNING")
            answers = await _concurrently(queries, lambda: _timed(ctx, BUSY_STATUS, pipeline_id))
            floor += [seconds for seconds, _ in await _concurrently(queries, lambda: _timed(ctx, STORED, pipeline_id))]
        finally:
            release.parent.mkdir(parents=True, exist_ok=True)
            release.touch()
        await _until(ctx, run_id, lambda run: run["state"] in {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"})
        for seconds, data in answers:
            status = data["pipeline"]["status"]
            if status["__typename"] != "PipelineStatus":
                raise RuntimeError(f"status during a run answered {status}")
            stale_answers += bool(status["stale"])
            checked.add(status["checkedAt"])
            ours.append(seconds)

    ours_ms = [s * 1000 for s in ours]
    floor_ms = [s * 1000 for s in floor]
    p50, p99 = percentile(ours_ms, 50), percentile(ours_ms, 99)
    met = p99 <= P99_TARGET_MS and stale_answers == len(ours)
    ratio = p99 / percentile(floor_ms, 99) if floor_ms else None
    return [
        Row(
            f"status during a run, {queries} concurrent",
            f"p50 {p50:.0f} ms, p99 {p99:.0f} ms",
            _p50_p99(floor_ms),
            ratio,
            f"p99 ≤ {P99_TARGET_MS:.0f} ms, every answer stale",
            met,
        ).with_notes(
            f"{rounds} round(s): a 1-stage run holds the workspace (its command waits for a file the harness writes); "
            f"while its stage is RUNNING, {queries} `pipeline {{ status }}` queries are sent at once and each timed "
            f"({len(ours)} samples); baseline: the same {queries} concurrent queries of the pipeline's stored stages "
            f"(no worker), same round; ratio of the p99s. {stale_answers} of {len(ours)} answers were marked stale; "
            f"their checkedAt values: {', '.join(sorted(checked)) or 'none'} (the status before the runs was checked "
            f"at {idle['checkedAt']})."
        )
    ]  # fmt: skip


def _p50_p99(samples: list[float]) -> str:
    return f"p50 {percentile(samples, 50):.0f} ms, p99 {percentile(samples, 99):.0f} ms"


async def _status(ctx: Context, pipeline_id: str) -> dict[str, Any]:
    status: dict[str, Any] = (await ctx.gql.execute(BUSY_STATUS, {"id": pipeline_id}))["pipeline"]["status"]
    if status["__typename"] != "PipelineStatus":
        raise RuntimeError(f"status answered {status}")
    return status


async def _start(ctx: Context, pipeline_id: str) -> str:
    variables = {"id": pipeline_id, "options": {"force": True}}
    result = await ctx.gql.expect(EXECUTE, variables, "executePipeline", "RunQueued")
    run_id: str = result["run"]["id"]
    return run_id


async def _timed(ctx: Context, query: str, pipeline_id: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    data = await ctx.gql.execute(query, {"id": pipeline_id})
    return time.perf_counter() - started, data


async def _concurrently(
    count: int, call: Callable[[], Awaitable[tuple[float, dict[str, Any]]]]
) -> list[tuple[float, dict[str, Any]]]:
    return list(await asyncio.gather(*(call() for _ in range(count))))


def _stage_state(run: dict[str, Any], name: str) -> str | None:
    return next((s["state"] for s in run["stages"] if s["name"] == name), None)


async def _until(ctx: Context, run_id: str, condition: Callable[[dict[str, Any]], bool]) -> None:
    deadline = time.monotonic() + HOLD_DEADLINE_SECONDS
    while True:
        run = (await ctx.gql.execute(RUN_STATE, {"id": run_id}))["run"]
        if condition(run):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} did not reach the condition: {run}")
        await asyncio.sleep(0.05)
