"""Micro-measure the run-event store: insert_many latency per batch size, alone and with concurrent readers.

    python -m bench.event_store_probe --url mongodb://127.0.0.1:PORT/ [--preload-runs 20] [--events-per-run 1000]
        [--readers 0] [--reader-concurrency 1] [--shared] [--inserts 40] [--indexes all] [--sizes 1,10,100] [--explain]

Uses its own database (`event_store_probe`, dropped first) with the indexes of app/db.py on `run_events`,
preloads other runs' events, then times ordered insert_many of event-shaped documents of one run. Readers run in
separate processes (so their decoding does not delay the timed inserts) and loop the query of
`EventRepository.after`: `{run_id, seq: {$gt: n}}` sorted by seq, limit 500. Meant for a standalone FerretDB or
MongoDB; keep the load modest on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient

DB = "event_store_probe"


def event(run_id: str, seq: int) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "seq": seq,
        "type": "log",
        "at": datetime.now(UTC),
        "run_state": None,
        "stage": f"stage-{seq % 16}",
        "stage_state": None,
        "text": f"line {seq} of some stage output, about as long as a log chunk usually is\n" * 2,
        "offset": seq * 150,
        "message": None,
    }


async def setup(url: str, runs: int, per_run: int, indexes: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    await client.drop_database(DB)
    coll = client[DB].run_events
    if indexes in ("all", "unique"):
        await coll.create_index([("run_id", ASCENDING), ("seq", ASCENDING)], unique=True)
    if indexes == "all":
        await coll.create_index([("run_id", ASCENDING), ("stage", ASCENDING), ("offset", ASCENDING)])
    for r in range(runs):
        for start in range(1, per_run + 1, 500):
            await coll.insert_many([event(f"old-{r}", s) for s in range(start, min(start + 500, per_run + 1))])
    await client.close()


async def explain(url: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    db = client[DB]
    shapes = {
        "after (run_id + seq>n, sort seq)": {
            "find": "run_events", "filter": {"run_id": "old-0", "seq": {"$gt": 10}}, "sort": {"seq": 1}, "limit": 500,
        },
        "run_id equality only": {"find": "run_events", "filter": {"run_id": "old-0"}},
        "last_seq (run_id, sort seq desc)": {
            "find": "run_events", "filter": {"run_id": "old-0"}, "sort": {"seq": -1}, "limit": 1,
        },
    }  # fmt: skip
    for name, cmd in shapes.items():
        plan = await db.command("explain", cmd)
        keep = {k: plan.get(k) for k in ("filterPushdown", "sortPushdown", "limitPushdown", "queryPlanner")}
        print(f"explain {name}: {json.dumps(keep, default=str)}")
    await client.close()


def reader(url: str, concurrency: int, shared: bool) -> None:
    """``concurrency`` queries in flight at all times, as an API process serving many subscribers has.

    ``shared``: through ``EventRepository.after`` (simultaneous equal reads share a query), else raw queries.
    """
    from app.repositories.events import EventRepository

    async def loop(coll: Any, events: EventRepository) -> None:
        while True:
            if shared:
                await events.after("live", seq=0, limit=500)
            else:
                await coll.find({"run_id": "live", "seq": {"$gt": 0}}).sort("seq", 1).limit(500).to_list()

    async def main() -> None:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
        events = EventRepository(client[DB])
        await asyncio.gather(*(loop(client[DB].run_events, events) for _ in range(concurrency)))

    asyncio.run(main())


async def timed_inserts(url: str, sizes: list[int], inserts: int) -> dict[int, list[float]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    coll = client[DB].run_events
    seq = 0
    out: dict[int, list[float]] = {}
    for size in sizes:
        times = []
        for _ in range(inserts):
            docs = [event("live", seq + i + 1) for i in range(size)]
            seq += size
            t = time.perf_counter()
            await coll.insert_many(docs, ordered=True)
            times.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.02)  # a gap like the recorder's between bursts; keeps the load modest
        out[size] = times
    await client.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url", required=True)
    p.add_argument("--preload-runs", type=int, default=20)
    p.add_argument("--events-per-run", type=int, default=1000)
    p.add_argument("--readers", type=int, default=0)
    p.add_argument("--reader-concurrency", type=int, default=1, help="queries in flight per reader process")
    p.add_argument("--shared", action="store_true", help="readers go through EventRepository.after")
    p.add_argument("--inserts", type=int, default=40)
    p.add_argument("--sizes", default="1,10,100")
    p.add_argument("--indexes", choices=("all", "unique", "none"), default="all", help="all = those of app/db.py")
    p.add_argument("--explain", action="store_true")
    p.add_argument("--label", default="")
    a = p.parse_args()
    t = time.perf_counter()
    asyncio.run(setup(a.url, a.preload_runs, a.events_per_run, a.indexes))
    print(f"[{a.label}] preloaded {a.preload_runs}x{a.events_per_run} events in {time.perf_counter() - t:.1f} s")
    if a.explain:
        asyncio.run(explain(a.url))
    sizes = [int(s) for s in a.sizes.split(",")]
    reader_args = (a.url, a.reader_concurrency, a.shared)
    procs = [multiprocessing.Process(target=reader, args=reader_args) for _ in range(a.readers)]
    for proc in procs:
        proc.start()
    if procs:
        time.sleep(1.0)
    t = time.perf_counter()
    res = asyncio.run(timed_inserts(a.url, sizes, a.inserts))
    wall = time.perf_counter() - t
    for proc in procs:
        proc.terminate()
        proc.join()
    for size, times in res.items():
        times.sort()
        p90 = times[int(len(times) * 0.9) - 1]
        print(
            f"[{a.label}] readers={a.readers}x{a.reader_concurrency}{' shared' if a.shared else ''} batch={size:>3}: "
            f"median {statistics.median(times):7.1f} ms  p90 {p90:7.1f} ms  max {times[-1]:7.1f} ms  (n={len(times)})"
        )
    print(f"[{a.label}] wall {wall:.1f} s")


if __name__ == "__main__":
    main()
