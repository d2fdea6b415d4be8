"""executePipeline to the RUNNING update on a subscription: an absolute latency, no baseline."""

from __future__ import annotations

from bench.context import Context
from bench.results import Row
from bench.runs import timed_run
from bench.stats import percentile
from bench.workspaces import chain_workspace

P50_TARGET_MS = 30.0
P99_TARGET_MS = 100.0


async def run(ctx: Context) -> list[Row]:
    workspace = await chain_workspace(ctx.gql, 1)
    if not ctx.sizes.smoke:
        await timed_run(ctx, workspace.pipeline_id, {"force": True})  # warm-up, not counted
    samples = []
    mutation = []
    recorded = []
    for _ in range(ctx.sizes.running_samples):
        timing = await timed_run(ctx, workspace.pipeline_id, {"force": True})
        samples.append(timing.running_seconds * 1000)
        mutation.append(timing.mutation_seconds * 1000)
        recorded.append(timing.recorded_seconds * 1000)
    delivered = [s - r for s, r in zip(samples, recorded, strict=True)]
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    return [
        Row.absolute(
            "executePipeline → RUNNING update",
            f"p50 {p50:.0f} ms, p99 {p99:.0f} ms (min {min(samples):.0f}, max {max(samples):.0f})",
            target=f"p50 ≤ {P50_TARGET_MS:.0f} ms, p99 ≤ {P99_TARGET_MS:.0f} ms",
            met=p50 <= P50_TARGET_MS and p99 <= P99_TARGET_MS,
        ).with_notes(
            f"{len(samples)} sequential runs of a 1-stage pipeline (`force: true`), each waited to its end; clock from "
            "sending the mutation to receiving RUN_STATE RUNNING on `runUpdates(after: 0)` over a socket opened "
            "(connection_ack) before the mutation; the subscribe is sent when the mutation answers. Of that, the "
            f"mutation's own answer (RunQueued) takes p50 {percentile(mutation, 50):.0f} ms, "
            f"p99 {percentile(mutation, 99):.0f} ms; the worker records RUNNING (the event's `at`, ms precision) "
            f"p50 {percentile(recorded, 50):.0f} ms, p99 {percentile(recorded, 99):.0f} ms after the mutation was "
            f"sent; from then to the update's arrival p50 {percentile(delivered, 50):.0f} ms, "
            f"p99 {percentile(delivered, 99):.0f} ms (the subscription's start and delivery)."
        )
    ]
