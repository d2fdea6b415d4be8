"""Growth: do the reads users make stay as fast as the stored history grows?

The database is filled directly (no worker) with synthetic history: 1,000 finished runs of one pipeline, and
1,000 / 10,000 / 100,000 stored events across them (half in one long "training" run, as a run printing progress
for an hour writes, the rest spread over the other runs). At each size, through the API: ``run(id)`` with its
stages, a stage's ``log`` tail, ``runs(projectId, first: 20)`` and a ``runUpdates(after: N)`` catch-up of 100
events, each the median of repeated calls. The figure is the ratio of the largest size to the smallest.

``explain_queries`` runs ``explain`` on every query shape of app/repositories/ on the filled database and
reports whether the server pushes the filter, sort and limit down (FerretDB's explain says so; MongoDB's plans
name their index scans).
"""

from __future__ import annotations

import asyncio
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import AsyncMongoClient

from app.db import Database, Document
from app.domain.runs import EventType, RunEvent
from app.repositories.events import event_document, log_bucket, seq_bucket
from bench.context import Context
from bench.gql import CREATE_PIPELINE, CREATE_PROJECT, RUN_UPDATES
from bench.results import Row
from bench.ws import connect

FULL_SIZES = (1_000, 10_000, 100_000)
SMOKE_SIZES = (100, 1_000)
FULL_RUNS = 1_000
SMOKE_RUNS = 20
FULL_CALLS = 30
SMOKE_CALLS = 3
WARM_UP_CALLS = 1
MIN_CALLS = 5
BUDGET_SECONDS = 30.0
"""Per figure and size: a slow read is timed fewer times (at least MIN_CALLS) rather than for minutes."""
CATCH_UP = 100
LOG_TAIL_BYTES = 4096
RATIO_TARGET = 2.0
STAGES = ("prepare", "train", "evaluate")
LONG_RUN_SHARE = 0.5
INSERT_BATCH = 2_000
UPDATE_CONCURRENCY = 20

RUN = """
query($id: ID!) {
  run(id: $id) {
    ... on Run { id state lastSeq durationSeconds stages { name state exitCode durationSeconds logBytes } }
  }
}
"""

LOG_TAIL = """
query($id: ID!, $offset: Int!) {
  run(id: $id) {
    ... on Run { stages { name log(offset: $offset) { ... on StageLog { offset text nextOffset complete } } } }
  }
}
"""

RUNS = """
query($projectId: ID!) {
  runs(projectId: $projectId, first: 20) {
    ... on RunConnection { edges { cursor node { id state pipelineName createdAt } } }
  }
}
"""


@dataclass
class History:
    """The synthetic history: runs inserted once, events appended per size."""

    db: Database
    project_id: str
    pipeline_id: str
    user_id: str
    runs: int
    run_ids: list[str] = field(default_factory=list)
    last_seq: dict[str, int] = field(default_factory=dict)
    log_bytes: dict[str, int] = field(default_factory=dict)
    stored: int = 0

    @property
    def long_run(self) -> str:
        return self.run_ids[-1]  # the newest: the first `runs(first: 20)` shows it too

    async def create_runs(self) -> None:
        start = datetime.now(UTC) - timedelta(days=30)
        docs: list[Document] = []
        for index in range(self.runs):
            at = start + timedelta(minutes=index)
            stages = {
                name: {
                    "name": name, "command": f"python {name}.py", "state": "succeeded",
                    "started_at": at, "finished_at": at + timedelta(seconds=30), "exit_code": 0,
                    "peak_memory_bytes": 50_000_000, "cpu_seconds": 1.5, "log_bytes": 0,
                    "error": None, "skip_reason": None,
                }
                for name in STAGES
            }  # fmt: skip
            docs.append(
                {
                    "_id": ObjectId(),
                    "project_id": self.project_id,
                    "pipeline_id": self.pipeline_id,
                    "pipeline_name": "growth",
                    "state": "succeeded",
                    "options": {},
                    "triggered_by": self.user_id,
                    "trigger": "api",
                    "created_at": at,
                    "started_at": at,
                    "finished_at": at + timedelta(seconds=90),
                    "last_seq": 0,
                    "cancel_requested": False,
                    "retry_of": None,
                    "stage_order": list(STAGES),
                    "stages": stages,
                    "outputs_changed": [],
                    "events_bucketed": True,  # as RunRepository.create writes it: the events carry their buckets
                }
            )
        await self.db.runs.insert_many(docs, ordered=True)
        self.run_ids = [str(d["_id"]) for d in docs]
        self.last_seq = dict.fromkeys(self.run_ids, 0)
        self.log_bytes = dict.fromkeys(self.run_ids, 0)

    async def grow_to(self, total: int) -> float:
        """Append events until ``total`` are stored; the seconds it took."""
        started = time.perf_counter()
        adding = total - self.stored
        long_share = int(adding * LONG_RUN_SHARE)
        others = [r for r in self.run_ids if r != self.long_run]
        batch: list[Document] = []
        for index in range(adding):
            run_id = self.long_run if index < long_share else others[index % len(others)]
            batch.append(self._log_event(run_id))
            if len(batch) >= INSERT_BATCH:
                await self.db.run_events.insert_many(batch, ordered=False)
                batch = []
        if batch:
            await self.db.run_events.insert_many(batch, ordered=False)
        # One update per run, not one bulk write: FerretDB v1.24.2's PostgreSQL handler never answers an `update`
        # command carrying several updates (the service itself only ever sends one per command).
        for start in range(0, len(self.run_ids), UPDATE_CONCURRENCY):
            await asyncio.gather(*(self._settle(run_id) for run_id in self.run_ids[start : start + UPDATE_CONCURRENCY]))
        self.stored = total
        return time.perf_counter() - started

    async def _settle(self, run_id: str) -> None:
        await self.db.runs.update_one(
            {"_id": ObjectId(run_id)},
            {"$set": {"last_seq": self.last_seq[run_id], "stages.train.log_bytes": self.log_bytes[run_id]}},
        )

    def _log_event(self, run_id: str) -> Document:
        seq = self.last_seq[run_id] + 1
        self.last_seq[run_id] = seq
        text = f"epoch {seq // 100:4d} step {seq:7d} loss {1 / (1 + seq):.6f} lr 0.001\n"
        offset = self.log_bytes[run_id]
        self.log_bytes[run_id] = offset + len(text.encode())
        # The shape the service stores (with the buckets its reads use).
        event = RunEvent(run_id, seq, EventType.LOG, datetime.now(UTC), stage="train", text=text, offset=offset)
        return event_document(event)


async def run(ctx: Context) -> list[Row]:
    sizes = SMOKE_SIZES if ctx.sizes.smoke else FULL_SIZES
    calls = SMOKE_CALLS if ctx.sizes.smoke else FULL_CALLS
    client: AsyncMongoClient[Document] = AsyncMongoClient(ctx.stack.env["MONGODB_URL"], tz_aware=True)
    try:
        db = client[ctx.stack.env["MONGODB_DATABASE"]]
        history = await _history(ctx, db, SMOKE_RUNS if ctx.sizes.smoke else FULL_RUNS)
        figures: dict[str, list[float]] = {name: [] for name in ("run", "log", "runs", "catch-up")}
        fill_notes: list[str] = []
        for total in sizes:
            seconds = await history.grow_to(total)
            fill_notes.append(f"{total:,} events stored in {seconds:.1f} s")
            for name, median in (await _measure(ctx, history, calls)).items():
                figures[name].append(median)
            print(f"bench: growth at {total:,} events: {_row_text(sizes, figures, -1)}", file=sys.stderr, flush=True)
        explained = await explain_queries(db, history)
    finally:
        await client.close()

    labels = {
        "run": "`run(id)` with stages",
        "log": f"a stage's `log` tail (last {LOG_TAIL_BYTES // 1024} KiB of the long run)",
        "runs": "`runs(projectId, first: 20)`",
        "catch-up": f"`runUpdates(after: N)` catch-up of {CATCH_UP} events",
    }
    rows = []
    for name, label in labels.items():
        medians = figures[name]
        ratio = medians[-1] / medians[0] if medians[0] else math.nan
        rows.append(
            Row(
                f"Growth: {label}, {sizes[0]:,} -> {sizes[-1]:,} events",
                " / ".join(f"{m:.1f} ms" for m in medians),
                "—",
                ratio,
                f"≤ {RATIO_TARGET:g}x from the smallest to the largest",
                ratio <= RATIO_TARGET,
            )
        )
    rows[0] = rows[0].with_notes(
        f"{history.runs:,} finished runs of one pipeline (3 stages), events inserted directly: "
        f"{LONG_RUN_SHARE:.0%} in one long run (the one read), the rest spread over the others. Figures at "
        + " / ".join(f"{s:,}" for s in sizes)
        + f" stored events; each the median of {calls} calls (fewer past {BUDGET_SECONDS:g} s, at least {MIN_CALLS}) "
        "through the API (HTTP, or one WebSocket for the catch-up: subscribe to `complete`), after a warm-up call. "
        + "; ".join(fill_notes)
        + ".",
        "Pushed down by the database (explain at the largest size): " + explained,
    )
    return rows


def _row_text(sizes: tuple[int, ...], figures: dict[str, list[float]], index: int) -> str:
    return ", ".join(f"{name} {values[index]:.1f} ms" for name, values in figures.items())


async def _history(ctx: Context, db: Database, runs: int) -> History:
    project = await ctx.gql.expect(
        CREATE_PROJECT, {"input": {"name": f"growth-{int(time.time())}"}}, "createProject", "ProjectCreated"
    )
    project_id: str = project["project"]["id"]
    stages = [{"name": name, "command": f"python {name}.py"} for name in STAGES]
    written = await ctx.gql.expect(
        CREATE_PIPELINE, {"input": {"projectId": project_id, "name": "growth", "stages": stages}},
        "createPipeline", "PipelineWritten",
    )  # fmt: skip
    user = await db.users.find_one({"name": ctx.gql.credentials.user})
    if user is None:
        raise RuntimeError(f"the harness's user {ctx.gql.credentials.user!r} is not in the database")
    history = History(db, project_id, written["pipeline"]["id"], str(user["_id"]), runs)
    started = time.perf_counter()
    await history.create_runs()
    print(f"bench: growth: {runs:,} runs stored in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return history


async def _measure(ctx: Context, history: History, calls: int) -> dict[str, float]:
    run_id = history.long_run
    tail = max(0, history.log_bytes[run_id] - LOG_TAIL_BYTES)

    async def run_query() -> None:
        data = await ctx.gql.execute(RUN, {"id": run_id})
        if data["run"]["lastSeq"] != history.last_seq[run_id]:
            raise RuntimeError(f"run(id) answered lastSeq {data['run']['lastSeq']}, stored {history.last_seq[run_id]}")

    async def log_query() -> None:
        data = await ctx.gql.execute(LOG_TAIL, {"id": run_id, "offset": tail})
        train = next(s for s in data["run"]["stages"] if s["name"] == "train")["log"]
        if train["nextOffset"] != history.log_bytes[run_id] or not train["complete"]:
            raise RuntimeError(f"the log tail ends at {train['nextOffset']}, stored {history.log_bytes[run_id]}")

    async def runs_query() -> None:
        data = await ctx.gql.execute(RUNS, {"projectId": history.project_id})
        if len(data["runs"]["edges"]) != min(20, history.runs):
            raise RuntimeError(f"runs(first: 20) answered {len(data['runs']['edges'])} runs")

    results = {
        "run": await _timed(run_query, calls),
        "log": await _timed(log_query, calls),
        "runs": await _timed(runs_query, calls),
    }
    async with connect(ctx.stack.api_url, ctx.gql.credentials) as connection:
        wanted = min(CATCH_UP, history.last_seq[run_id])  # smoke sizes hold fewer
        after = history.last_seq[run_id] - wanted

        async def catch_up() -> None:
            subscription = await connection.subscribe(RUN_UPDATES, {"runId": run_id, "after": after})
            updates = [m.data["runUpdates"] async for m in subscription.messages()]
            events = [u for u in updates if u["type"] != "SNAPSHOT"]
            if len(events) != wanted or events[0]["seq"] != after + 1:
                raise RuntimeError(f"the catch-up gave {len(events)} events from {events[:1]}")

        results["catch-up"] = await _timed(catch_up, calls)
    return results


async def _timed(call: Any, calls: int) -> float:
    """The median of ``calls`` timed calls, fewer (at least MIN_CALLS) when they exceed the time budget."""
    for _ in range(WARM_UP_CALLS):
        await call()
    samples: list[float] = []
    deadline = time.perf_counter() + BUDGET_SECONDS
    while len(samples) < calls and (len(samples) < MIN_CALLS or time.perf_counter() < deadline):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def explain_queries(db: Database, history: History) -> str:
    """Every query shape of app/repositories/ (filter, sort, limit), explained on the filled database."""
    run_id = history.long_run
    any_id = ObjectId(run_id)
    in_project = history.project_id  # one project: an equality (runs.list_page)
    in_projects = {"$in": [history.project_id, str(ObjectId())]}
    now = datetime.now(UTC)
    silent = {"$lt": now}
    claim_lost = {"_id": any_id, "state": "running", "heartbeat_at": silent, "last_seq": 1}
    pipeline = history.pipeline_id
    log_base = {"run_id": run_id, "type": "log", "stage": "train"}
    shapes: list[tuple[str, str, Document, Document | None, int | None]] = [
        ("runs.get", "runs", {"_id": any_id}, None, 1),
        ("runs.list_page", "runs", {"project_id": in_project}, {"_id": -1}, 21),
        ("runs.list_page (pipeline)", "runs", {"project_id": in_project, "pipeline_id": pipeline}, {"_id": -1}, 21),
        ("runs.list_page (after)", "runs", {"project_id": in_project, "_id": {"$lt": any_id}}, {"_id": -1}, 21),
        ("runs.list_page (several projects)", "runs", {"project_id": in_projects}, {"_id": -1}, 21),
        ("runs.transition/claim", "runs", {"_id": any_id, "state": {"$in": ["queued"]}}, None, 1),
        ("runs.claim_lost", "runs", claim_lost, None, 1),
        ("runs.lost_runs", "runs", {"state": "running", "heartbeat_at": {"$lt": now}}, None, None),
        ("runs.ids_for_project", "runs", {"project_id": history.project_id}, None, None),
        ("runs.queued_before", "runs", {"state": "queued", "created_at": {"$lt": now}}, None, None),
        ("events.after", "run_events", {"run_id": run_id, "seq": {"$gt": 1}}, {"seq": 1}, 500),
        ("events.last_seq", "run_events", {"run_id": run_id}, {"seq": -1}, 1),
        ("events.log_window (holding)", "run_events", log_base | {"offset": {"$lte": 0}}, {"offset": -1}, 1),
        ("events.log_window (following)", "run_events", log_base | {"offset": {"$gt": 0}}, {"offset": 1}, None),
        ("events.log_window (end)", "run_events", log_base, {"offset": -1}, 1),
        ("events.after (bucketed)", "run_events", {"seq_bucket": seq_bucket(run_id, 1)}, None, None),
        ("events.log_window (bucketed)", "run_events", {"log_bucket": log_bucket(run_id, "train", 0)}, None, None),
        ("events.delete_for_runs", "run_events", {"run_id": {"$in": [run_id]}}, None, None),
        ("pipelines.get", "pipelines", {"_id": ObjectId(history.pipeline_id)}, None, 1),
        ("pipelines.find_by_name", "pipelines", {"project_id": history.project_id, "name": "growth"}, None, 1),
        ("pipelines.list_page", "pipelines", {"project_id": history.project_id}, {"_id": 1}, 51),
        ("projects.get", "projects", {"_id": ObjectId(history.project_id)}, None, 1),
        ("projects.list_page / ids_of", "projects", {"members.user_id": history.user_id}, {"_id": 1}, 21),
        ("users.get_user", "users", {"_id": ObjectId(history.user_id)}, None, 1),
        ("users.find_user_by_name", "users", {"name": "x"}, None, 1),
        ("users.find_token_by_hash", "api_tokens", {"hash": "x"}, None, 1),
        ("users.tokens_of", "api_tokens", {"user_id": history.user_id}, {"_id": 1}, None),
    ]  # fmt: skip
    lines = []
    for name, collection, query, sort, limit in shapes:
        command: Document = {"find": collection, "filter": query}
        if sort is not None:
            command["sort"] = sort
        if limit is not None:
            command["limit"] = limit
        plan = await db.command({"explain": command})
        lines.append(f"{name}: {_pushdown(plan, sort is not None, limit is not None)}")
    text = "; ".join(lines)
    print("bench: explain: " + "\n  ".join(["", *lines]), file=sys.stderr, flush=True)
    return text


def _pushdown(plan: Document, sorted_: bool, limited: bool) -> str:
    """FerretDB v1 reports filterPushdown / sortPushdown / limitPushdown; MongoDB reports its winning plan."""
    if "filterPushdown" in plan:
        parts = [f"filter {'yes' if plan.get('filterPushdown') else 'NO'}"]
        if sorted_:
            parts.append(f"sort {'yes' if plan.get('sortPushdown') else 'NO'}")
        if limited:
            parts.append(f"limit {'yes' if plan.get('limitPushdown') else 'NO'}")
        return ", ".join(parts) + f"; PostgreSQL {_pg_access(plan.get('queryPlanner', {}))}"
    winning = str(plan.get("queryPlanner", {}).get("winningPlan", {}))
    return "index scan" if "IXSCAN" in winning or "IDHACK" in winning or "EXPRESS" in winning else "collection scan"


def _pg_access(node: Any) -> str:
    """How PostgreSQL reads the table in FerretDB's plan: an index (which) or a sequential scan."""
    found: list[str] = []

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            kind = str(item.get("Node Type", ""))
            if "Index" in kind:
                found.append(f"index {item.get('Index Name', '?')}")
            elif kind == "Seq Scan":
                found.append("seq scan")
            for value in item.values():
                walk(value)
        elif isinstance(item, list):
            for value in item:
                walk(value)

    walk(node)
    return " + ".join(dict.fromkeys(found)) or "?"
