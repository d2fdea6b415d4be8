"""Start a run with executePipeline and follow it on `runUpdates` (graphql-transport-ws), timing what it sees."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bench.context import Context
from bench.gql import EXECUTE, RUN_UPDATES
from bench.ws import connect

RUN_DEADLINE_SECONDS = 600.0


class RunFailed(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class RunTiming:
    run_id: str
    mutation_seconds: float
    """From sending the mutation to its answer (RunQueued)."""
    running_seconds: float
    """From sending the mutation to receiving the RUN_STATE RUNNING update."""
    recorded_seconds: float
    """From sending the mutation to the moment the worker recorded RUNNING (the event's ``at``, same machine clock)."""
    succeeded_seconds: float
    """From sending the mutation to receiving the RUN_STATE SUCCEEDED update."""
    updates: int


async def timed_run(ctx: Context, pipeline_id: str, options: dict[str, Any]) -> RunTiming:
    """Execute and follow to the end; the socket is open (connection_ack) before the clock starts, as a dashboard's."""
    async with asyncio.timeout(RUN_DEADLINE_SECONDS), connect(ctx.stack.api_url, ctx.gql.credentials) as connection:
        started = time.time()
        result = await ctx.gql.expect(EXECUTE, {"id": pipeline_id, "options": options}, "executePipeline", "RunQueued")
        run_id: str = result["run"]["id"]
        answered = time.time() - started
        # after: 0 replays from the first event, so RUNNING is seen even when it happened before the subscribe.
        subscription = await connection.subscribe(RUN_UPDATES, {"runId": run_id, "after": 0})
        running = recorded = float("nan")
        count = 0
        async for received in subscription.messages():
            count += 1
            update = received.data["runUpdates"]
            if update["type"] != "RUN_STATE":
                continue
            state = update["runState"]
            if state == "RUNNING":
                running = received.at - started
                recorded = datetime.fromisoformat(update["at"]).timestamp() - started
            elif state == "SUCCEEDED":
                return RunTiming(run_id, answered, running, recorded, received.at - started, count)
            elif state in {"FAILED", "CANCELLED", "TIMED_OUT"}:
                raise RunFailed(f"run {run_id} ended {state}")
        raise RunFailed(f"run {run_id}: subscription completed without a final state")
