"""`pipelines(first: N)` with stages under load, against a bare Starlette endpoint; the API process's memory."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx

from bench.context import Context
from bench.gql import LIST_PIPELINES
from bench.results import Row, summary_text
from bench.stack import ROOT, rss_bytes
from bench.stats import Summary
from bench.workspaces import list_project

RATIO_TARGET = 0.3
RSS_TARGET_MB = 120.0
RSS_SAMPLE_SECONDS = 0.1
MB = 1024 * 1024


async def run(ctx: Context, idle_at_start_mb: float) -> list[Row]:
    sizes = ctx.sizes
    project_id = await list_project(ctx.gql, sizes.list_pipelines, sizes.list_stages)
    first = sizes.list_pipelines
    body = ctx.scratch / "list-query.json"
    body.write_text(json.dumps({"query": LIST_PIPELINES, "variables": {"projectId": project_id, "first": first}}))
    baseline_url = f"{ctx.stack.baseline_url}/pipelines?projectId={project_id}&first={first}"
    await _same_answer(ctx, body, baseline_url, expected=first * sizes.list_stages)

    idle_mb = rss_bytes(ctx.stack.api.pid) / MB
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    peak_mb = idle_mb
    for index in range(sizes.rounds):
        for side in ("api", "baseline") if index % 2 == 0 else ("baseline", "api"):
            if side == "api":
                load = _load(ctx, f"{ctx.stack.api_url}/graphql", body, f"api-{index}")
                result, peak = await _sampling_rss(ctx.stack.api.pid, load)
                ours.append(result)
                peak_mb = max(peak_mb, peak)
            else:
                theirs.append(await _load(ctx, baseline_url, None, f"baseline-{index}"))

    ours_rps = Summary.of([r["rps"] for r in ours])
    base_rps = Summary.of([r["rps"] for r in theirs])
    ours_p99 = Summary.of([r["p99_ms"] for r in ours])
    base_p99 = Summary.of([r["p99_ms"] for r in theirs])
    fields = sizes.list_pipelines * (2 + sizes.list_stages * 4)
    ours_p50 = Summary.of([r["p50_ms"] for r in ours])
    base_p50 = Summary.of([r["p50_ms"] for r in theirs])
    list_row = Row.compared(
        f"`pipelines(first: {first})` with {sizes.list_stages} stages each",
        ours_rps, base_rps, "req/s", target=f"≥ {RATIO_TARGET}x req/s", limit=RATIO_TARGET, higher=True,
    ).with_notes(
        f"{first} pipelines x {sizes.list_stages} stages (~{fields:,} leaf fields) from MongoDB; load from a separate "
        f"process, {sizes.load_connections} keep-alive connections x {sizes.load_seconds:g} s per round, "
        f"{sizes.rounds} round(s), sides interleaved. Latency p50/p99: ours {summary_text(ours_p50, 'ms')} / "
        f"{summary_text(ours_p99, 'ms')}, baseline {summary_text(base_p50, 'ms')} / "
        f"{summary_text(base_p99, 'ms')}. Baseline: `bench/baseline_app.py` (Starlette + PyMongo async, same "
        "database and collection, the same two reads (project, then page), no auth, "
        "same JSON shape, same uvicorn settings)."
    )  # fmt: skip
    rss_row = Row.absolute(
        "API process RSS, idle / under list load",
        f"{idle_at_start_mb:.0f} MB after start-up, {idle_mb:.0f} MB idle before the load, {peak_mb:.0f} MB peak",
        target=f"≤ {RSS_TARGET_MB:.0f} MB",
        met=max(idle_at_start_mb, idle_mb, peak_mb) <= RSS_TARGET_MB,
    ).with_notes(
        f"VmRSS of the uvicorn process (/proc/<pid>/status), sampled every {RSS_SAMPLE_SECONDS * 1000:g} ms "
        "during the list load rounds."
    )
    return [list_row, rss_row]


async def _same_answer(ctx: Context, body: Path, baseline_url: str, *, expected: int) -> None:
    """Both sides answer the same documents in the same shape (checked once, then warmed up)."""
    async with httpx.AsyncClient(timeout=60) as http:
        headers = ctx.gql.credentials.headers | {"content-type": "application/json"}
        query = await asyncio.to_thread(body.read_bytes)
        ours = (await http.post(f"{ctx.stack.api_url}/graphql", content=query, headers=headers)).json()
        theirs = (await http.get(baseline_url, headers=ctx.gql.credentials.headers)).json()
    if ours != theirs:
        raise RuntimeError(f"the baseline answers differently:\n{str(ours)[:300]}\n{str(theirs)[:300]}")
    stages = sum(len(e["node"]["stages"]) for e in ours["data"]["pipelines"]["edges"])
    if stages != expected:
        raise RuntimeError(f"expected {expected} stages in the list, got {stages}")


async def _load(ctx: Context, url: str, body: Path | None, name: str) -> dict[str, Any]:
    out = ctx.scratch / f"load-{name}.json"
    args = [
        sys.executable, "-m", "bench.http_load", "--url", url,
        "--connections", str(ctx.sizes.load_connections), "--seconds", str(ctx.sizes.load_seconds),
        "--out", str(out), *(["--body", str(body)] if body else []),
    ]  # fmt: skip
    env = ctx.stack.env | ctx.gql.credentials.as_env()
    process = await asyncio.create_subprocess_exec(*args, cwd=ROOT, env=env)
    code = await asyncio.wait_for(process.wait(), ctx.sizes.load_seconds + 60)
    if code != 0:
        raise RuntimeError(f"load process exited {code}")
    result: dict[str, Any] = json.loads(out.read_text())
    if result["errors"] or not result["requests"]:
        raise RuntimeError(f"load against {url} failed: {result}")
    return result


async def _sampling_rss(pid: int, load: Any) -> tuple[dict[str, Any], float]:
    task: asyncio.Task[dict[str, Any]] = asyncio.ensure_future(load)
    peak = 0.0
    while not task.done():
        peak = max(peak, rss_bytes(pid) / MB)
        await asyncio.sleep(RSS_SAMPLE_SECONDS)  # sampling interval while the load runs
    return task.result(), peak
