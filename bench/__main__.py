"""Run every benchmark against the real stack and print (and in full mode, write) the results table.

    python -m bench [--smoke] [--out docs/benchmarks.md]

Needs MONGODB_URL and REDIS_URL (the Makefile's `bench` and `bench-smoke` wrap this in .ci/with-services.sh).
Exits non-zero when a benchmark errors; missed targets are reported, not failures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from bench import (
    busy_status_bench,
    credentials,
    execute_bench,
    experiments_bench,
    fanout_bench,
    growth_bench,
    list_bench,
    network_bench,
    results_bench,
    running_bench,
    sandbox_bench,
    status_bench,
)
from bench.config import FULL, SMOKE
from bench.context import Context
from bench.gql import GraphQLClient
from bench.report import document, notes, table
from bench.results import Row
from bench.stack import ROOT, rss_bytes, running_stack

Benchmark = Callable[[Context], Awaitable[list[Row]]]
BENCHMARK_NAMES = [
    "list",
    "status",
    "execute",
    "sandbox",
    "network",
    "running",
    "busy-status",
    "fanout",
    "results",
    "experiments",
    "growth",
]


async def run_all(ctx: Context, idle_mb: float, only: list[str]) -> list[Row]:
    benchmarks: list[tuple[str, Benchmark]] = [
        ("list", lambda c: list_bench.run(c, idle_mb)),
        ("status", status_bench.run),
        ("execute", execute_bench.run),
        ("sandbox", sandbox_bench.run),
        ("network", network_bench.run),
        ("running", running_bench.run),
        ("busy-status", busy_status_bench.run),
        ("fanout", fanout_bench.run),
        ("results", results_bench.run),
        ("experiments", experiments_bench.run),
        ("growth", growth_bench.run),
    ]
    rows: list[Row] = []
    for name, benchmark in benchmarks:
        if only and name not in only:
            continue
        started = time.perf_counter()
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        load_before = os.getloadavg()[0]
        found = await benchmark(ctx)
        load = f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after ({os.cpu_count()} CPUs)"
        rows += [found[0].with_notes(f"Machine during this benchmark: {load}."), *found[1:]]
        print(f"bench: {name} done in {time.perf_counter() - started:.1f} s; {load}", file=sys.stderr, flush=True)
    return rows


async def main(args: argparse.Namespace) -> int:
    sizes = SMOKE if args.smoke else FULL
    started = time.perf_counter()
    base = Path(tempfile.mkdtemp(prefix="bench-", dir=os.environ.get("BENCH_TMP")))
    try:
        with running_stack(base) as stack:
            idle_mb = rss_bytes(stack.api.pid) / (1024 * 1024)
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=120) as http:
                gql = GraphQLClient(http, await asyncio.to_thread(credentials.create, stack.env))
                scratch = base / "scratch"
                scratch.mkdir()
                rows = await run_all(Context(stack, gql, sizes, scratch), idle_mb, args.only)
            database = f"{stack.env['MONGODB_URL']} ({_server(stack.env['MONGODB_URL'])})"
    finally:
        if not os.environ.get("KEEP_BENCH_DATA"):
            shutil.rmtree(base, ignore_errors=True)
    print(table(rows))
    print("\n" + notes(rows))
    if not args.smoke and not args.only:
        text = document(rows, command=args.command, database=database, seconds=time.perf_counter() - started)
        print(f"\nwritten to {_write(Path(args.out), text)}", file=sys.stderr)
    met = sum(r.met for r in rows)
    print(f"\n{len(rows)} benchmarks ran, {met} targets met, {len(rows) - met} missed", file=sys.stderr)
    return 0


def _write(out: Path, text: str) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return out.relative_to(ROOT) if out.is_relative_to(ROOT) else out


def _server(url: str) -> str:
    from pymongo import MongoClient

    client: MongoClient[dict[str, object]] = MongoClient(url, serverSelectionTimeoutMS=5000)
    try:
        info = client.admin.command("buildInfo")
        if "ferretdb" in str(info).lower():
            return f"FerretDB, MongoDB wire version {info.get('version')}"
        return f"MongoDB {info.get('version')}"
    finally:
        client.close()


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="one round, tiny sizes: checks the harness runs")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="the report (full mode only)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        choices=BENCHMARK_NAMES,
        help="run only this benchmark (repeatable; the report is then not written)",
    )
    parser.add_argument("--command", default="make bench", help="the command named in the report")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
