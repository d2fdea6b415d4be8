"""Ending a RUNNING run without its recorder: the one way a run is settled when its worker cannot do it.

Used by the reaper (its worker vanished, or its job ended without ending it), by cancelRun (the worker did not stop
it in time) and by a run's own job when something failed under it (its recorder may be the thing that failed). The
stages and the state are written in one guarded write, so a worker that is still alive cannot overwrite the final
state afterwards: every write of a worker is guarded by the run being RUNNING.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from pymongo.errors import DuplicateKeyError
from redis.asyncio import Redis

from app.domain.runs import EventType, Run, RunEvent, RunState, StageRun, StageRunState
from app.events.publisher import record_event
from app.repositories.events import EventRepository
from app.repositories.pipelines import PipelineRepository
from app.repositories.runs import RunRepository
from app.workspace_lock import release_run_lock

# A worker still numbering events may take the number we chose first; we move on to the next one.
FINAL_EVENT_ATTEMPTS = 100


def settled_stages(stages: list[StageRun], *, running_to: StageRunState, error: str) -> list[StageRun]:
    """Every stage in a final state: a RUNNING one becomes ``running_to``, a PENDING one NOT_RUN."""
    return [_settled(s, running_to, error) for s in stages]


def _settled(stage: StageRun, running_to: StageRunState, error: str) -> StageRun:
    if stage.state == StageRunState.RUNNING:
        return replace(stage, state=running_to, error=error, finished_at=stage.finished_at or datetime.now(UTC))
    if stage.state == StageRunState.PENDING:
        return replace(stage, state=StageRunState.NOT_RUN, error=error)
    return stage


async def settle_run(
    *,
    runs: RunRepository,
    events: EventRepository,
    pipelines: PipelineRepository,
    redis: Redis,
    run: Run,
    state: RunState,
    error: str,
    running_to: StageRunState = StageRunState.FAILED,
    seen_seq: int | None = None,
    silent_since: datetime | None = None,
    numbered_through: int | None = None,
) -> Run | None:
    """RUNNING -> ``state`` from ``run`` (its stages as the caller knows them), with the final event recorded and the
    workspace freed if its lock still names the run; None when the run was not RUNNING (or the guards of
    ``RunRepository.settle``, ``seen_seq`` and ``silent_since``, refused), and nothing was done.

    ``numbered_through`` is the last number of a stored event, if the caller knows it (a recorder's own count, which
    can be ahead of the document when its writes failed; or read before ``run``, to keep the time between reading
    the run and settling it short); else it is read here. The final event takes the next number, or the next free
    one should a worker still numbering events have taken it.
    """
    if numbered_through is None:
        numbered_through = await events.last_seq(run.id)
    # Numbered in the same write as the final state, as the recorder does: a follower reading the finished run then
    # waits for this event.
    seq = max(run.last_seq, numbered_through) + 1
    settled = await runs.settle(
        run.id,
        state=state,
        error=error,
        stages=settled_stages(run.stages, running_to=running_to, error=error),
        seq=seq,
        seen_seq=seen_seq,
        silent_since=silent_since,
    )
    if settled is None:
        return None
    seq = await _record_final_event(events, redis, settled, seq)
    if seq != settled.last_seq:
        await runs.set_fields(run.id, last_seq=seq)
    final = replace(settled, last_seq=seq)
    await release_run_lock(redis, project_id=run.project_id, run_id=run.id)
    await pipelines.record_run(final)
    return final


async def _record_final_event(events: EventRepository, redis: Redis, run: Run, seq: int) -> int:
    """Store and publish the run's final event at ``seq``, or the next free number; the number it took."""
    assert run.state.finished
    for _ in range(FINAL_EVENT_ATTEMPTS):
        event = RunEvent(
            run_id=run.id,
            seq=seq,
            type=EventType.RUN_STATE,
            at=datetime.now(UTC),
            run_state=run.state,
            message=run.error,
        )
        try:
            await record_event(events, redis, event, project_id=run.project_id, pipeline_id=run.pipeline_id)
            return seq
        except DuplicateKeyError:
            seq += 1
    raise RuntimeError(f"run {run.id}: no free number for its final event after {FINAL_EVENT_ATTEMPTS} attempts")


async def ensure_final_event(
    *, runs: RunRepository, events: EventRepository, pipelines: PipelineRepository, redis: Redis, run_id: str
) -> Run:
    """The run as stored; if it is finished but its final event was never stored (the write of the state succeeded,
    the event's failed), that event is recorded now, so its followers learn that it ended, and so is the pipeline's
    last run (which comes after the event)."""
    run = await runs.get(run_id)
    if run.state.finished and await events.last_seq(run_id) < run.last_seq:
        await _record_final_event(events, redis, run, run.last_seq)
        await pipelines.record_run(run)
    return run
