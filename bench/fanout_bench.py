"""One run's events to many subscribers through Redis: delivery latency at the event rate stage output achieves."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from app.events import channels
from app.events.wire import decode_events
from bench.context import Context
from bench.cpu import CpuWindow
from bench.fanout_load import summary
from bench.gql import EXECUTE, RUN_STATE
from bench.results import Row, summary_text
from bench.stack import ROOT
from bench.stats import Summary, percentile
from bench.workspaces import Workspace, emitter_workspace

P99_TARGET_MS = 60.0
RATE_TARGET = 1000.0
EMIT_INTERVAL_SECONDS = 0.002
STAGES_START_DEADLINE_SECONDS = 300.0
DRAIN_SECONDS = 60.0
MAX_ROUNDS = 2
FINISHED = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"}


async def run(ctx: Context) -> list[Row]:
    sizes = ctx.sizes
    workspace = await emitter_workspace(ctx.gql, sizes.fanout_stages, sizes.fanout_emit_seconds, EMIT_INTERVAL_SECONDS)
    results = [await _round(ctx, workspace, index) for index in range(min(sizes.rounds, MAX_ROUNDS))]
    p99 = Summary.of([r["p99_ms"] for r in results])
    p50 = Summary.of([r["p50_ms"] for r in results])
    rate = Summary.of([r["rate"] for r in results])
    peak = max(r["peak_rate_1s"] for r in results)
    return [
        Row.absolute(
            f"run events to {sizes.fanout_subscribers} subscribers",
            f"p99 {summary_text(p99, 'ms')}, p50 {summary_text(p50, 'ms')} at {rate.median:,.0f} events/s",
            target=f"p99 ≤ {P99_TARGET_MS:.0f} ms at {RATE_TARGET:,.0f} events/s",
            met=p99.median <= P99_TARGET_MS and rate.median >= RATE_TARGET,
        ).with_notes(
            f"{sizes.fanout_subscribers} graphql-transport-ws clients ({sizes.fanout_load_processes} separate load "
            "processes, so that one busy client process does not queue what it measures) on "
            f"`runUpdateBatches` of one run of {sizes.fanout_stages} parallel stages "
            f"(`maxParallel: {sizes.fanout_stages}`), each printing a line every {EMIT_INTERVAL_SECONDS * 1000:g} ms "
            f"for {sizes.fanout_emit_seconds:g} s once all have started; every output chunk the launcher flushes "
            "(at most ~10/s per stage) is one LOG event. Latency = receive time - the event's `at`, over events "
            "produced after the start signal. Achieved rate = distinct LOG events / their `at` span: "
            f"{summary_text(rate, 'events/s')}, best 1-s window {peak:,} events; "
            f"{len(results)} round(s). Per round: "
            + "; ".join(
                f"{r['deliveries']:,} deliveries, max {r['max_ms']:.0f} ms, each subscriber got "
                f"{r['received_min']}-{r['received_max']} updates in {r['messages_min']}-{r['messages_max']} messages, "
                f"run {r['final_state']}; stored and published (seen by a plain Redis subscriber) p50 "
                f"{r['published_p50_ms']:.0f} ms, p99 {r['published_p99_ms']:.0f} ms after `at`; CPU meanwhile: API "
                f"{r['cpu']['api']:.2f} cores, worker {r['cpu']['worker']:.2f}, machine {r['cpu']['machine']:.0%} busy"
                for r in results
            )
            + "."
        )
    ]


def _reset(root: Path) -> None:
    """The harness's start signal and the stages' readiness marks live in the workspace (not tracked by DVC)."""
    shutil.rmtree(root / "fanout" / "ready", ignore_errors=True)
    (root / "fanout" / "go").unlink(missing_ok=True)


async def _round(ctx: Context, workspace: Workspace, index: int) -> dict[str, Any]:
    sizes = ctx.sizes
    root = ctx.workspace(workspace.project_id)
    _reset(root)
    options = {"force": True, "maxParallel": sizes.fanout_stages}
    queued = await ctx.gql.expect(
        EXECUTE, {"id": workspace.pipeline_id, "options": options}, "executePipeline", "RunQueued"
    )
    # Beside the subscribers, a plain Redis subscriber sees each event as the worker published it (stored first).
    published: list[tuple[float, float]] = []
    tap = asyncio.create_task(_tap_published(ctx.stack.env["REDIS_URL"], queued["run"]["id"], published))
    shares = _shares(sizes.fanout_subscribers, sizes.fanout_load_processes)
    outs = [ctx.scratch / f"fanout-{index}-{part}.json" for part in range(len(shares))]
    loads = [await _start_load(ctx, queued["run"]["id"], count, out) for count, out in zip(shares, outs, strict=True)]
    try:
        for load in loads:
            assert load.stdout is not None
            line = await asyncio.wait_for(load.stdout.readline(), STAGES_START_DEADLINE_SECONDS)
            if line.strip() != b"ready":
                raise RuntimeError(f"fanout load process did not get ready: {line!r}")
        await _all_stages_started(root / "fanout" / "ready", sizes.fanout_stages)
        cpu = CpuWindow({"api": ctx.stack.api.pid, "worker": ctx.stack.worker.pid})
        go_at = time.time()
        cpu.start(go_at)
        (root / "fanout" / "go").touch()
        for load in loads:
            assert load.stdin is not None
            load.stdin.write(b"go\n")
            await load.stdin.drain()
        async with asyncio.timeout(sizes.fanout_emit_seconds + DRAIN_SECONDS + 30):
            await asyncio.gather(*(load.wait() for load in loads))
        used = cpu.stop(time.time())
    finally:
        tap.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tap
        for load in loads:
            if load.returncode is None:
                load.kill()
                await load.wait()
    if any(load.returncode != 0 for load in loads):
        raise RuntimeError(f"fanout load processes exited {[load.returncode for load in loads]}")
    result = summary([json.loads(out.read_text()) for out in outs], go_at, sizes.fanout_subscribers)
    after_go = [latency for at, latency in published if at >= go_at]
    result["published_p50_ms"] = percentile(after_go, 50)
    result["published_p99_ms"] = percentile(after_go, 99)
    result["cpu"] = used
    if result["errors"] or result["deliveries"] == 0:
        raise RuntimeError(f"fanout round failed: {result}")
    await _finished(ctx, queued["run"]["id"])  # the next round must not queue behind this run
    return result


async def _tap_published(redis_url: str, run_id: str, latencies: list[tuple[float, float]]) -> None:
    """Until cancelled: for each event published on the run's channel, its `at` and ms from then to its arrival."""
    redis = Redis.from_url(redis_url)
    pubsub = redis.pubsub()
    try:
        await pubsub.subscribe(channels.run_events(run_id))
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                now = time.time()
                for event in decode_events(message["data"]):
                    at = event.at.timestamp()
                    latencies.append((at, (now - at) * 1000))
    finally:
        await pubsub.aclose()
        await redis.aclose()


def _shares(subscribers: int, processes: int) -> list[int]:
    """Subscribers per load process, as even as they go."""
    count = max(1, min(processes, subscribers))
    return [subscribers // count + (1 if part < subscribers % count else 0) for part in range(count)]


async def _start_load(ctx: Context, run_id: str, subscribers: int, out: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.fanout_load",
        "--url", ctx.stack.api_url, "--run", run_id,
        "--subscribers", str(subscribers),
        "--deadline", str(ctx.sizes.fanout_emit_seconds + DRAIN_SECONDS), "--out", str(out),
        cwd=ROOT, env=ctx.stack.env | ctx.gql.credentials.as_env(),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _finished(ctx: Context, run_id: str) -> None:
    deadline = time.monotonic() + DRAIN_SECONDS
    while (state := (run := (await ctx.gql.execute(RUN_STATE, {"id": run_id}))["run"])["state"]) not in FINISHED:
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} still {state} after the load ended")
        await asyncio.sleep(0.1)  # polling interval of a deadline-bounded wait
    if state != "SUCCEEDED":
        failed = [s for s in run["stages"] if s["state"] != "SUCCEEDED"]
        raise RuntimeError(f"fanout run {run_id} ended {state}: {run['error']}; {failed[:5]}")


def _count(folder: Path) -> int:
    return len(list(folder.iterdir())) if folder.is_dir() else 0


async def _all_stages_started(ready: Path, stages: int) -> None:
    deadline = time.monotonic() + STAGES_START_DEADLINE_SECONDS
    while (started := _count(ready)) < stages:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {started}/{stages} stages started")
        await asyncio.sleep(0.05)  # polling interval of a deadline-bounded wait
