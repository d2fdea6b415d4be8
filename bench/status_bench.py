"""Status and dry-run plans of N-stage chains through the API, against `dvc status --json` / `dvc repro --dry`."""

from __future__ import annotations

import json
import math
import re
import time

from bench.cli import dvc
from bench.context import Context
from bench.gql import DRY_RUN, STATUS
from bench.results import Row
from bench.rounds import interleaved
from bench.stats import Summary
from bench.workspaces import Workspace, chain_workspace, write_file

# (status, dry run) ratio targets for the smaller and the larger chain.
TARGETS = ((0.35, 0.5), (0.6, 0.7))
# Typed errors a status or dry run may answer under load: timed and reported, not a harness failure.
REFUSALS = {"WorkerUnavailableError", "WorkspaceBusyError"}
RUNNING_STAGE = re.compile(r"Running stage '(?:[^']*:)?([^':]+)'")


async def run(ctx: Context) -> list[Row]:
    rows: list[Row] = []
    for index, stages in enumerate(ctx.sizes.status_stages):
        status_target, dry_target = TARGETS[min(index, len(TARGETS) - 1)]
        workspace = await chain_workspace(ctx.gql, stages)
        rows.append(await _status(ctx, workspace, status_target))
        rows.append(await _dry_run(ctx, workspace, dry_target))
    return rows


async def _status(ctx: Context, workspace: Workspace, target: float) -> Row:
    root = ctx.workspace(workspace.project_id)
    await dvc(root, "repro", workspace.pipeline_path)  # set-up: everything up to date, dvc.lock written

    refusals: list[str] = []

    async def ours() -> float:
        if refusals:
            return math.nan  # the service already gave up once; later rounds would only queue behind that job
        started = time.perf_counter()
        data = await ctx.gql.execute(STATUS, {"id": workspace.pipeline_id})
        seconds = time.perf_counter() - started
        status = data["pipeline"]["status"]
        if status["__typename"] in REFUSALS:
            refusals.append(f"{status['__typename']} after {seconds:.1f} s: {status['message']}")
        elif status["__typename"] != "PipelineStatus" or not status["upToDate"] or status["stale"]:
            raise RuntimeError(f"unexpected status: {str(status)[:500]}")
        return seconds

    async def baseline() -> float:
        result = await dvc(root, "status", "--json", workspace.pipeline_path)
        if json.loads(result.output or "{}"):
            raise RuntimeError(f"dvc status: not up to date: {result.output[:500]}")
        return result.seconds

    if not ctx.sizes.smoke:
        await ours(), await baseline()  # warm-up (worker's imports, page cache), not counted
    ours_samples, baseline_samples = await interleaved(ctx.sizes.rounds, ours, baseline)
    n = len(workspace.stage_names)
    row = Row.compared(
        f"status, {n}-stage chain",
        Summary.of([s * 1000 for s in ours_samples]),
        Summary.of([s * 1000 for s in baseline_samples]),
        "ms",
        target=f"≤ {target}x",
        limit=target,
        higher=False,
    ).with_notes(
        f"`pipeline(id) {{ status {{ ... }} }}` over HTTP, up-to-date workspace (after a CLI `dvc repro`), against "
        f"`dvc status --json {workspace.pipeline_path}`; {ctx.sizes.rounds} round(s) after a warm-up of each side."
    )
    return _refused(row, refusals)


async def _dry_run(ctx: Context, workspace: Workspace, target: float) -> Row:
    root = ctx.workspace(workspace.project_id)
    first_input = "chain/input.txt"
    await write_file(ctx.gql, workspace.project_id, first_input, f"changed {time.time()}\n")
    planned: list[str] = []
    cli_named: list[str] = []
    refusals: list[str] = []

    async def ours() -> float:
        if refusals:
            return math.nan  # as for status
        started = time.perf_counter()
        data = await ctx.gql.execute(DRY_RUN, {"id": workspace.pipeline_id})
        seconds = time.perf_counter() - started
        plan = data["dryRunPipeline"]
        if plan["__typename"] in REFUSALS:
            refusals.append(f"{plan['__typename']} after {seconds:.1f} s: {plan['message']}")
        elif plan["__typename"] != "DryRunPlan":
            raise RuntimeError(f"unexpected dry run answer: {str(plan)[:500]}")
        else:
            planned[:] = [s["name"] for s in plan["stages"]]
        return seconds

    async def baseline() -> float:
        result = await dvc(root, "repro", "--dry", workspace.pipeline_path)
        cli_named[:] = RUNNING_STAGE.findall(result.output)
        return result.seconds

    if not ctx.sizes.smoke:
        await ours(), await baseline()
    ours_samples, baseline_samples = await interleaved(ctx.sizes.rounds, ours, baseline)
    executed = RUNNING_STAGE.findall((await dvc(root, "repro", workspace.pipeline_path)).output)
    covers = planned == executed
    n = len(workspace.stage_names)
    row = Row.compared(
        f"dry-run plan, {n}-stage chain",
        Summary.of([s * 1000 for s in ours_samples]),
        Summary.of([s * 1000 for s in baseline_samples]),
        "ms",
        target=f"≤ {target}x, plan covers the run",
        limit=target,
        higher=False,
    )
    row = Row(
        row.benchmark, row.ours, row.baseline, row.ratio, row.target, row.met and covers,
        [
            f"`dryRunPipeline` after changing the first input, against `dvc repro --dry {workspace.pipeline_path}`. "
            f"Plan lists {len(planned)} stages; the `dvc repro` that followed ran {len(executed)}: "
            f"{'identical, in order' if covers else 'DIFFERENT'}; `dvc repro --dry` named {len(cli_named)}."
        ],
    )  # fmt: skip
    return _refused(row, refusals)


def _refused(row: Row, refusals: list[str]) -> Row:
    """The service answered a typed error instead (e.g. no worker answer within its wait): a miss, not a crash."""
    if not refusals:
        return row
    note = (
        f"The API answered an error instead of a result: {refusals[0]}; its figure is that call's time, and the "
        "remaining API rounds of this row were skipped (they would queue behind the abandoned job)."
    )
    return Row(row.benchmark, row.ours, row.baseline, row.ratio, row.target, False, [*row.notes, note])
