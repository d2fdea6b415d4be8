"""Results: compareRuns of finished runs, and metricsDiff between two commits, against DVC's CLI on the same workspace.

Each run commits its results (executePipeline `commit: true`), so the CLI can read the same values from the
revisions: `dvc metrics show --json -A` (every commit, in one process) for the comparison, `dvc metrics diff --json
a b` for the diff.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bench.cli import dvc
from bench.context import Context
from bench.results import Row
from bench.rounds import interleaved
from bench.runs import timed_run
from bench.stats import Summary
from bench.workspaces import create_pipeline, new_project, write_file

COMPARE_TARGET = 0.2
DIFF_TARGET = 0.5
VALUES = 10

COMPARE = """
query($ids: [ID!]!) {
  compareRuns(runIds: $ids) {
    __typename
    ... on RunComparison { columns { kind file key } rows { runId hasResults cells { value number delta } } }
  }
}
"""

DIFF = """
query($p: ID!, $a: String!, $b: String!) {
  metricsDiff(projectId: $p, a: $a, b: $b) {
    __typename ... on RevisionDiff { entries { file key old new delta } errors { file message } }
  }
}
"""

RUN_COMMIT = "query($id: ID!) { run(id: $id) { ... on Run { commitSha commitNote } } }"

SCORE_PY = """\
import json, os, sys
# params.yaml is "p:" then one "  kNN: <int>" line per value; read with the standard library, as a stage has no
# packages of the service's (and this project has no requirements.txt).
params = dict(line.strip().split(": ") for line in open("params.yaml").read().splitlines()[1:] if line.strip())
params = {key: int(value) for key, value in params.items()}
out = sys.argv[1] if len(sys.argv) > 1 else "metrics.json"
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
json.dump({f"m{i:02d}": round(sum(params.values()) * (i + 1) / 7, 6) for i in range(10)}, open(out, "w"))
"""


def params_yaml(seed: int) -> str:
    lines = ["p:"] + [f"  k{i:02d}: {seed * 10 + i}" for i in range(VALUES)]
    return "\n".join(lines) + "\n"


async def run(ctx: Context) -> list[Row]:
    return [await _compare(ctx), await _diff(ctx)]


async def _committed_run(ctx: Context, pipeline_id: str) -> tuple[str, str]:
    timing = await timed_run(ctx, pipeline_id, {"commit": True})
    run = (await ctx.gql.execute(RUN_COMMIT, {"id": timing.run_id}))["run"]
    if run["commitSha"] is None:
        raise RuntimeError(f"run {timing.run_id} committed nothing: {run['commitNote']}")
    return timing.run_id, run["commitSha"]


async def _compare(ctx: Context) -> Row:
    runs = 2 if ctx.sizes.smoke else 20
    project_id = await new_project(ctx.gql)
    await write_file(ctx.gql, project_id, "score.py", SCORE_PY)
    await write_file(ctx.gql, project_id, "params.yaml", params_yaml(0))
    stage = {
        "name": "score",
        "command": "python3 score.py",
        "deps": ["score.py"],
        "params": [f"p.k{i:02d}" for i in range(VALUES)],
        "metrics": ["metrics.json"],
    }
    pipeline_id = await create_pipeline(ctx.gql, project_id, "compare", [stage])
    run_ids: list[str] = []
    for index in range(runs):
        await write_file(ctx.gql, project_id, "params.yaml", params_yaml(index + 1))
        run_ids.append((await _committed_run(ctx, pipeline_id))[0])
    root = ctx.workspace(project_id)

    async def ours() -> float:
        started = time.perf_counter()
        table = (await ctx.gql.execute(COMPARE, {"ids": run_ids}))["compareRuns"]
        seconds = time.perf_counter() - started
        if table["__typename"] != "RunComparison" or len(table["rows"]) != runs:
            raise RuntimeError(f"unexpected comparison: {str(table)[:500]}")
        if len(table["columns"]) != 2 * VALUES or not all(r["hasResults"] for r in table["rows"]):
            raise RuntimeError(f"comparison lacks values: {len(table['columns'])} columns")
        return seconds

    async def baseline() -> float:
        result = await dvc(root, "metrics", "show", "--json", "-A")
        revisions = json.loads(result.output[result.output.index("{") :])
        if len(revisions) < runs:
            raise RuntimeError(f"dvc metrics show -A read {len(revisions)} revisions, not {runs}")
        return result.seconds

    if not ctx.sizes.smoke:
        await ours(), await baseline()
    ours_samples, baseline_samples = await interleaved(ctx.sizes.rounds, ours, baseline)
    return Row.compared(
        f"compareRuns, {runs} runs x {VALUES} params + {VALUES} metrics",
        Summary.of([s * 1000 for s in ours_samples]),
        Summary.of([s * 1000 for s in baseline_samples]),
        "ms",
        target=f"≤ {COMPARE_TARGET}x",
        limit=COMPARE_TARGET,
        higher=False,
    ).with_notes(
        f"`compareRuns(runIds)` over HTTP on {runs} finished runs (each committed), against "
        "`dvc metrics show --json -A` on the same workspace (one process reading every commit; it reads only the "
        f"metrics, so a conservative baseline); {ctx.sizes.rounds} round(s) after a warm-up of each side."
    )


async def _diff(ctx: Context) -> Row:
    stages = 3 if ctx.sizes.smoke else 10
    project_id = await new_project(ctx.gql)
    await write_file(ctx.gql, project_id, "score.py", SCORE_PY)
    await write_file(ctx.gql, project_id, "params.yaml", params_yaml(0))
    specs: list[dict[str, Any]] = []
    previous: list[str] = []
    for index in range(1, stages + 1):
        out = f"metrics/m{index:02d}.json"
        specs.append(
            {
                "name": f"s{index:02d}",
                "command": f"python3 score.py {out}",
                "deps": ["score.py", *previous],
                "params": ["p.k00"],
                "metrics": [out],
            }
        )
        previous = [out]
    pipeline_id = await create_pipeline(ctx.gql, project_id, "diff", specs)
    _, first = await _committed_run(ctx, pipeline_id)
    await write_file(ctx.gql, project_id, "params.yaml", params_yaml(1))
    _, second = await _committed_run(ctx, pipeline_id)
    root = ctx.workspace(project_id)

    async def ours() -> float:
        started = time.perf_counter()
        diff = (await ctx.gql.execute(DIFF, {"p": project_id, "a": first, "b": second}))["metricsDiff"]
        seconds = time.perf_counter() - started
        if diff["__typename"] != "RevisionDiff" or len(diff["entries"]) != stages * VALUES:
            raise RuntimeError(f"unexpected diff: {str(diff)[:500]}")
        return seconds

    async def baseline() -> float:
        result = await dvc(root, "metrics", "diff", "--json", first, second)
        changed = json.loads(result.output[result.output.index("{") :])
        if sum(len(keys) for keys in changed.values()) != stages * VALUES:
            raise RuntimeError(f"dvc metrics diff: {result.output[:500]}")
        return result.seconds

    if not ctx.sizes.smoke:
        await ours(), await baseline()
    ours_samples, baseline_samples = await interleaved(ctx.sizes.rounds, ours, baseline)
    return Row.compared(
        f"metricsDiff, two commits of a {stages}-stage pipeline",
        Summary.of([s * 1000 for s in ours_samples]),
        Summary.of([s * 1000 for s in baseline_samples]),
        "ms",
        target=f"≤ {DIFF_TARGET}x",
        limit=DIFF_TARGET,
        higher=False,
    ).with_notes(
        f"`metricsDiff(projectId, a, b)` over HTTP ({stages} metrics files x {VALUES} keys, all changed), against "
        f"`dvc metrics diff --json a b` on the same workspace; {ctx.sizes.rounds} round(s) after a warm-up of each "
        "side."
    )
