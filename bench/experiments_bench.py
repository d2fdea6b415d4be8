"""Experiments: a sweep through the API against DVC's own queue, and experimentsTable against `dvc exp show --json`.

The sweep row times, on each side, from the first request to the last result readable: ours from `runSweep` to the
moment `experimentsTable(sweepId)` has every experiment SUCCEEDED with its metric; DVC's from the first
`dvc exp run --queue -S ...` to the end of `dvc exp show --json` once every experiment's ref exists, with
`dvc queue start -j N` in between. DVC runs on a copy of the same workspace with every file committed (its queue
takes experiments from commits and stashes). Its queue workers are always stopped (`dvc queue stop --kill`) and its
wait is bounded: a queue that does not finish in time gives no figure, a note, and no error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.cli import dvc
from bench.context import Context
from bench.results import Row
from bench.results_bench import SCORE_PY, VALUES, params_yaml
from bench.runs import timed_run
from bench.stats import Summary
from bench.workspaces import create_pipeline, new_project, write_file

SWEEP_TARGET = 0.5
TABLE_TARGET = 0.1
SWEEP_DEADLINE_SECONDS = 600.0
DVC_STEP_TIMEOUT_SECONDS = 180.0
POLL_SECONDS = 0.1
STALL_SECONDS = 20.0
IDLE_WORKERS = re.compile(r"Worker status: 0 active")

TRAIN_PY = """\
import json, sys, time
lr = float(open("params.yaml").read().split("lr:")[1].split()[0])
time.sleep(float(sys.argv[1]))
json.dump({"score": round(lr * 10, 6)}, open("metrics.json", "w"))
"""

RUN_SWEEP = """
mutation($p: ID!, $grid: [SweepAxisInput!]!, $max: Int!) {
  runSweep(pipelineId: $p, grid: $grid, maxParallel: $max) {
    __typename ... on SweepQueued { sweep { id } } ... on Error { message }
  }
}
"""

SWEEP_STATE = "query($id: ID!) { sweep(id: $id) { ... on Sweep { state } } }"

TABLE = """
query($s: ID, $p: ID) {
  experimentsTable(sweepId: $s, pipelineId: $p) {
    __typename
    ... on ExperimentsTable {
      columns { kind file key }
      rows { experiment { name state error } hasResults cells { number delta } }
    }
  }
}
"""


async def run(ctx: Context) -> list[Row]:
    return [await _sweep(ctx), await _table(ctx)]


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def _committed_copy(workspace: Path, target: Path) -> Path:
    """The workspace as DVC's queue needs it: a copy (own cache, own refs) with every file committed."""
    shutil.copytree(workspace, target, symlinks=True)
    _git(target, "worktree", "prune")
    _git(target, "add", "-A")
    _git(target, "commit", "-q", "-m", "bench baseline")
    return target


def _exp_refs(root: Path) -> set[str]:
    listed = _git(root, "for-each-ref", "--format=%(refname)", "refs/exps").split()
    return {ref for ref in listed if not ref.startswith("refs/exps/exec/")}


def _dvc_step(root: Path, *args: str) -> str:
    """One DVC command of the queue baseline, bounded (DVC's own CLI, dvc on PATH for the workers it starts)."""
    env = dict(os.environ) | {"DVC_NO_ANALYTICS": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DVC_STEP_TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} exited {done.returncode}: {(done.stderr or done.stdout)[-800:]}")
    return done.stdout


def _dvc_queue(root: Path, target: str, values: list[str], jobs: int, deadline_seconds: float) -> float | str:
    """DVC's queue from the first request to the last result readable: seconds, or why there is no figure."""
    before = _exp_refs(root)
    started = time.perf_counter()
    try:
        for value in values:
            _dvc_step(root, "exp", "run", "--queue", target, "-S", f"train.lr={value}")
        _dvc_step(root, "queue", "start", "-j", str(jobs))
        seen, progressed = 0, time.perf_counter()
        while (done := len(_exp_refs(root) - before)) < len(values):
            now = time.perf_counter()
            if done > seen:
                seen, progressed = done, now
            if now - started > deadline_seconds:
                status = _dvc_step(root, "queue", "status")
                return f"DVC's queue had not finished {len(values)} experiments in {deadline_seconds:g} s: {status}"
            if now - progressed > STALL_SECONDS:
                # DVC's workers may all exit while experiments are still queued (its queue's known races): then
                # nothing more will come, and waiting out the deadline would only lengthen the benchmark.
                status = _dvc_step(root, "queue", "status")
                if IDLE_WORKERS.search(status):
                    return f"DVC's queue workers stopped with {len(values) - done} experiment(s) unfinished: {status}"
                progressed = now
            time.sleep(POLL_SECONDS)  # polling interval of a deadline-bounded wait
        shown = json.loads(_dvc_step(root, "exp", "show", "--json"))
        seconds = time.perf_counter() - started
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        return f"DVC's queue failed: {str(error)[:300]}"
    finally:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):  # no worker left to stop
            _dvc_step(root, "queue", "stop", "--kill")
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):  # a stalled round leaves none to the next
            _dvc_step(root, "queue", "remove", "--queued")
    found = sum(len(g["revs"]) for b in shown for g in (b.get("experiments") or []))
    if found < len(values):
        return f"dvc exp show listed {found} experiments, not {len(values)}"
    return seconds


async def _table_complete(ctx: Context, sweep_id: str, count: int) -> None:
    """Until experimentsTable(sweepId) has ``count`` SUCCEEDED experiments with results (bounded)."""
    deadline = time.perf_counter() + SWEEP_DEADLINE_SECONDS
    while True:
        table = (await ctx.gql.execute(TABLE, {"s": sweep_id}))["experimentsTable"]
        rows = table.get("rows") or []
        failed = [
            (r["experiment"]["name"], r["experiment"]["error"])
            for r in rows
            if r["experiment"]["state"] in {"FAILED", "CANCELLED", "TIMED_OUT"}
        ]
        if failed:
            raise RuntimeError(f"experiments {failed} of sweep {sweep_id} did not succeed")
        if len(rows) == count and all(r["hasResults"] and r["experiment"]["state"] == "SUCCEEDED" for r in rows):
            return
        if time.perf_counter() > deadline:
            raise RuntimeError(f"sweep {sweep_id} not complete in {SWEEP_DEADLINE_SECONDS:g} s: {str(rows)[:300]}")
        await asyncio.sleep(POLL_SECONDS)  # polling interval of a deadline-bounded wait


async def _sweep_once(ctx: Context, pipeline_id: str, values: list[str], parallel: int) -> float:
    started = time.perf_counter()
    grid = [{"key": "train.lr", "values": values}]
    queued = await ctx.gql.expect(
        RUN_SWEEP, {"p": pipeline_id, "grid": grid, "max": parallel}, "runSweep", "SweepQueued"
    )
    await _table_complete(ctx, queued["sweep"]["id"], len(values))
    return time.perf_counter() - started


async def _sweep(ctx: Context) -> Row:
    count, parallel, sleep = (2, 2, 0.2) if ctx.sizes.smoke else (8, 4, 1.0)
    rounds = 1 if ctx.sizes.smoke else 3
    project_id = await new_project(ctx.gql)
    await write_file(ctx.gql, project_id, "params.yaml", "train:\n  lr: 0.01\n")
    await write_file(ctx.gql, project_id, "train.py", TRAIN_PY)
    stages = [
        {"name": "prepare", "command": "echo rows > prepared.txt", "outs": ["prepared.txt"]},
        {
            "name": "train",
            "command": f"python3 train.py {sleep:g}",
            "deps": ["prepared.txt", "train.py"],
            "params": ["train.lr"],
            "metrics": ["metrics.json"],
        },
    ]
    pipeline_id = await create_pipeline(ctx.gql, project_id, "sweep", stages)
    await timed_run(ctx, pipeline_id, {})  # the base's outputs in the cache, for both sides
    copy = await asyncio.to_thread(_committed_copy, ctx.workspace(project_id), ctx.scratch / f"dvc-queue-{project_id}")
    ours_samples: list[float] = []
    baseline_samples: list[float] = []
    problems: list[str] = []
    for index in range(rounds):
        # Values never seen before on either side: no run-cache hit shortens a round.
        values = [f"0.{index:02d}{i:02d}1" for i in range(count)]
        ours_samples.append(await _sweep_once(ctx, pipeline_id, values, parallel))
        theirs = await asyncio.to_thread(
            _dvc_queue,
            copy,
            "pipelines/sweep/dvc.yaml",
            [f"0.{index:02d}{i:02d}2" for i in range(count)],
            parallel,
            SWEEP_DEADLINE_SECONDS,
        )
        if isinstance(theirs, str):
            problems.append(theirs)
        else:
            baseline_samples.append(theirs)
    baseline = Summary.of(baseline_samples) if baseline_samples else Summary.of([math.nan])
    return Row.compared(
        f"sweep of {count} experiments (2 stages, train sleeps {sleep:g} s), maxParallel {parallel}",
        Summary.of(ours_samples),
        baseline,
        "s",
        target=f"≤ {SWEEP_TARGET}x",
        limit=SWEEP_TARGET,
        higher=False,
    ).with_notes(
        f"Ours: `runSweep` over HTTP (one axis of {count} values of train.lr, maxParallel {parallel}) until "
        "`experimentsTable(sweepId)` has every experiment SUCCEEDED with its metric. DVC: on a copy of the same "
        f"workspace with every file committed, `dvc exp run --queue <dvc.yaml> -S train.lr=...` x{count}, "
        f"`dvc queue start -j {parallel}`, until every experiment's ref exists, then `dvc exp show --json`; its "
        f"workers stopped with `dvc queue stop --kill`. {rounds} round(s), new values each round.",
        *problems,
    )


async def _table(ctx: Context) -> Row:
    first, second = (2, 1) if ctx.sizes.smoke else (10, 10)
    count = first * second
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
    pipeline_id = await create_pipeline(ctx.gql, project_id, "table", [stage])
    await timed_run(ctx, pipeline_id, {})
    grid = [
        {"key": "p.k00", "values": [str(100 + i) for i in range(first)]},
        {"key": "p.k01", "values": [str(200 + i) for i in range(second)]},
    ]
    queued = await ctx.gql.expect(RUN_SWEEP, {"p": pipeline_id, "grid": grid, "max": 4}, "runSweep", "SweepQueued")
    await _table_complete(ctx, queued["sweep"]["id"], count)
    root = ctx.workspace(project_id)

    async def ours() -> float:
        started = time.perf_counter()
        table = (await ctx.gql.execute(TABLE, {"p": pipeline_id}))["experimentsTable"]
        seconds = time.perf_counter() - started
        if len(table["rows"]) != count or len(table["columns"]) != 2 * VALUES:
            raise RuntimeError(f"unexpected table: {len(table['rows'])} rows, {len(table['columns'])} columns")
        return seconds

    async def baseline() -> float:
        result = await dvc(root, "exp", "show", "--json")
        shown: list[dict[str, Any]] = json.loads(result.output[result.output.index("[") :])
        found = sum(len(g["revs"]) for b in shown for g in (b.get("experiments") or []))
        if found != count:
            raise RuntimeError(f"dvc exp show listed {found} experiments, not {count}")
        return result.seconds

    if not ctx.sizes.smoke:
        await ours(), await baseline()
    rounds = ctx.sizes.rounds
    ours_samples = [await ours() for _ in range(rounds)]
    baseline_samples = [await baseline() for _ in range(rounds)]
    return Row.compared(
        f"experimentsTable, {count} experiments x {VALUES} params + {VALUES} metrics",
        Summary.of([s * 1000 for s in ours_samples]),
        Summary.of([s * 1000 for s in baseline_samples]),
        "ms",
        target=f"≤ {TABLE_TARGET}x",
        limit=TABLE_TARGET,
        higher=False,
    ).with_notes(
        f"`experimentsTable(pipelineId)` over HTTP on {count} stored experiments of one sweep, against "
        f"`dvc exp show --json` in the same workspace (the same {count} DVC experiments); {rounds} round(s) after "
        "a warm-up of each side."
    )
