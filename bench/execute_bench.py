"""Executing pipelines: executePipeline to the SUCCEEDED update, against `dvc repro` on a twin workspace."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bench.cli import dvc
from bench.context import Context
from bench.results import Row
from bench.rounds import interleaved
from bench.runs import timed_run
from bench.stats import Summary
from bench.workspaces import Workspace, chain_workspace, wide_workspace

MakeWorkspace = Callable[[], Awaitable[Workspace]]


async def run(ctx: Context) -> list[Row]:
    sizes = ctx.sizes
    chain = await _compare(ctx, lambda: chain_workspace(ctx.gql, sizes.chain_stages), {}, target=1.0)
    chain = chain.with_notes(
        f"{sizes.chain_stages} stages `cp previous next`, each round on two fresh workspaces (a first run, no "
        "run-cache): one run through the API (clock from sending the mutation to receiving RUN_STATE SUCCEEDED on "
        "`runUpdates`), one `dvc repro` (spawn to exit)."
    )
    wide_options = {"maxParallel": sizes.wide_branches}
    wide = await _compare(
        ctx, lambda: wide_workspace(ctx.gql, sizes.wide_branches, sizes.wide_sleep_seconds), wide_options, target=0.35
    )
    wide = wide.with_notes(
        f"{sizes.wide_branches} x `sleep {sizes.wide_sleep_seconds:g}` stages then one final stage, fresh workspaces "
        f"per round as above; the API run asks `maxParallel: {sizes.wide_branches}` (the default is the worker's "
        "CPU count, and the stages are sleep-bound, not CPU-bound)."
    )
    return [chain, wide]


async def _compare(ctx: Context, make: MakeWorkspace, options: dict[str, Any], *, target: float) -> Row:
    stage_count = 0

    async def ours() -> float:
        nonlocal stage_count
        workspace = await make()
        stage_count = len(workspace.stage_names)
        return (await timed_run(ctx, workspace.pipeline_id, options)).succeeded_seconds

    async def baseline() -> float:
        workspace = await make()
        return (await dvc(ctx.workspace(workspace.project_id), "repro", workspace.pipeline_path)).seconds

    ours_samples, baseline_samples = await interleaved(ctx.sizes.rounds, ours, baseline)
    kind = "chain" if not options else "wide pipeline"
    return Row.compared(
        f"execute {kind} ({stage_count} stages)",
        Summary.of(ours_samples),
        Summary.of(baseline_samples),
        "s",
        target=f"≤ {target}x",
        limit=target,
        higher=False,
    )
