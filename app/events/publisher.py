"""Append events to MongoDB, then publish them: the store first, so a subscriber can always catch up."""

from __future__ import annotations

from redis.asyncio import Redis

from app.domain.runs import EventType, RunEvent
from app.events import channels
from app.events.recent import push_recent
from app.events.wire import encode_events, encode_run_notice
from app.repositories.events import EventRepository


async def record_event(
    events: EventRepository, redis: Redis, event: RunEvent, *, project_id: str, pipeline_id: str
) -> None:
    await record_events(events, redis, [event], project_id=project_id, pipeline_id=pipeline_id)


async def record_events(
    events: EventRepository, redis: Redis, batch: list[RunEvent], *, project_id: str, pipeline_id: str
) -> None:
    """Store consecutive events of one run in one write, then publish them as one message."""
    await events.append_many(batch)
    await publish_events(redis, batch, project_id=project_id, pipeline_id=pipeline_id)


async def publish_events(redis: Redis, batch: list[RunEvent], *, project_id: str, pipeline_id: str) -> None:
    # One transaction: the message joins the run's recent list exactly when it is published (app.events.recent).
    message = encode_events(batch)
    async with redis.pipeline(transaction=True) as pipe:
        push_recent(pipe, batch[0].run_id, message)
        pipe.publish(channels.run_events(batch[0].run_id), message)
        for event in batch:
            if event.type == EventType.RUN_STATE and event.run_state is not None:
                notice = encode_run_notice(event.run_id, event.run_state.value)
                pipe.publish(channels.pipeline_runs(pipeline_id), notice)
                pipe.publish(channels.project_runs(project_id), notice)
        await pipe.execute()


async def announce_run(redis: Redis, *, run_id: str, state: str, project_id: str, pipeline_id: str) -> None:
    """Tell pipeline and project watchers about a run that has no event yet (a new, queued run)."""
    notice = encode_run_notice(run_id, state)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.publish(channels.pipeline_runs(pipeline_id), notice)
        pipe.publish(channels.project_runs(project_id), notice)
        await pipe.execute()
