"""Load process: N graphql-transport-ws subscribers to one run's `runUpdateBatches`, measuring delivery latency.

    python -m bench.fanout_load --url URL --run RUN_ID --subscribers N --deadline S --out FILE
    (credentials in BENCH_USER / BENCH_TOKEN)

Prints `ready` once every subscriber has its SNAPSHOT, then reads `go` on stdin (when the producer starts).
Collects until every subscription completes (the run ended) or S seconds after go, then writes what it saw as JSON
(``Collector.raw``): the benchmark runs several such processes, so that one saturated client process does not add
its own queueing to the latency it measures, and merges them with ``summary``: latency = receive time - the event's
`at` (same machine clock) over events produced after go, the event rate achieved (distinct events per second of
their `at`), and what each subscriber received.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from array import array
from datetime import datetime
from pathlib import Path
from typing import Any

import uvloop

from bench.credentials import Credentials
from bench.gql import RUN_UPDATE_BATCHES
from bench.stats import percentile
from bench.ws import Subscription, connect

READY_DEADLINE_SECONDS = 120.0


class Collector:
    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        """(event at, receive time) of every received event, all subscribers."""
        self.events: dict[int, float] = {}
        """seq -> at of every distinct event seen."""
        self.log_seqs: set[int] = set()
        self.received: list[int] = []
        self.messages: list[int] = []
        """Messages each subscriber received (a message carries one or more updates)."""
        self.completed = 0
        self.final_state: str | None = None

    def raw(self) -> dict[str, Any]:
        """What this process saw, for the benchmark to merge with the other load processes' (``summary``)."""
        return {
            "samples": self.samples,
            "events": list(self.events.items()),
            "log_seqs": sorted(self.log_seqs),
            "received": self.received,
            "messages": self.messages,
            "completed": self.completed,
            "final_state": self.final_state,
        }


def summary(raws: list[dict[str, Any]], go_at: float, subscribers: int) -> dict[str, Any]:
    """Latency and rate over what every load process saw."""
    latencies = array("d", ((received - at) * 1000 for raw in raws for at, received in raw["samples"] if at >= go_at))
    events = {int(seq): float(at) for raw in raws for seq, at in raw["events"]}
    log_seqs = {int(seq) for raw in raws for seq in raw["log_seqs"]}
    produced = sorted(at for at in events.values() if at >= go_at)
    log_produced = sorted(events[s] for s in log_seqs if events[s] >= go_at)
    window = (log_produced[-1] - log_produced[0]) if len(log_produced) > 1 else 0.0
    bins: dict[int, int] = {}
    for at in log_produced:
        bins[int(at - go_at)] = bins.get(int(at - go_at), 0) + 1
    received = [count for raw in raws for count in raw["received"]]
    messages = [count for raw in raws for count in raw["messages"]]
    final_states = {raw["final_state"] for raw in raws} - {None}
    return {
        "subscribers": subscribers,
        "completed": sum(raw["completed"] for raw in raws),
        "final_state": ",".join(sorted(final_states)) or None,
        "deliveries": len(latencies),
        "events_after_go": len(produced),
        "log_events_after_go": len(log_produced),
        "log_window_seconds": window,
        "rate": len(log_produced) / window if window > 0 else 0.0,
        "peak_rate_1s": max(bins.values(), default=0),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies, default=float("nan")),
        "received_min": min(received, default=0),
        "received_max": max(received, default=0),
        "messages_min": min(messages, default=0),
        "messages_max": max(messages, default=0),
        "errors": [error for raw in raws for error in raw.get("errors", [])][:5],
        "timed_out": sum(raw.get("timed_out", 0) for raw in raws),
    }


async def follow(subscription: Subscription, collector: Collector, ready: asyncio.Event) -> None:
    count = 0
    messages = 0
    async for received in subscription.messages():
        messages += 1
        for update in received.data["runUpdateBatches"]["updates"]:
            count += 1
            if update["type"] == "SNAPSHOT":
                ready.set()
                continue
            seq = update["seq"]
            # Every subscriber gets the same events: each `at` is parsed once per process, not once per subscriber.
            at = collector.events.get(seq)
            if at is None:
                at = collector.events[seq] = datetime.fromisoformat(update["at"]).timestamp()
            collector.samples.append((at, received.at))
            if update["type"] == "LOG":
                collector.log_seqs.add(seq)
            elif update["type"] == "RUN_STATE" and update["runState"] not in {"QUEUED", "RUNNING"}:
                collector.final_state = update["runState"]
    collector.received.append(count)
    collector.messages.append(messages)
    collector.completed += 1


async def subscriber(args: argparse.Namespace, collector: Collector, ready: asyncio.Event) -> None:
    async with connect(args.url, Credentials.from_env(os.environ)) as connection:
        subscription = await connection.subscribe(RUN_UPDATE_BATCHES, {"runId": args.run, "after": None})
        await follow(subscription, collector, ready)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data))


async def main(args: argparse.Namespace) -> None:
    collector = Collector()
    readies = [asyncio.Event() for _ in range(args.subscribers)]
    tasks = [asyncio.create_task(subscriber(args, collector, ready)) for ready in readies]
    async with asyncio.timeout(READY_DEADLINE_SECONDS):
        await asyncio.gather(*(ready.wait() for ready in readies))
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # "go"
    done, pending = await asyncio.wait(tasks, timeout=args.deadline)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    errors = [repr(t.exception()) for t in done if t.exception() is not None]
    write_json(Path(args.out), collector.raw() | {"errors": errors[:5], "timed_out": len(pending)})


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--subscribers", type=int, required=True)
    parser.add_argument("--deadline", type=float, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if not args.url.startswith("http://127.0.0.1:"):
        parser.error("load is generated against 127.0.0.1 only")
    return args


if __name__ == "__main__":
    uvloop.run(main(parse()))
