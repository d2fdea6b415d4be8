"""Following a sweep's or a pipeline's experiments live: their snapshot, then every state each one enters, in order.

Shaped like the run follower (app.services.run_updates): subscribe (confirmed by Redis) first, then read the
snapshot from the store, then stream what is published, cleanup in ``finally`` (the hub subscription is an
``async with``). The one writer (app.services.experiment_states) stores each state before publishing it, so a state
entered after the read comes live; a message whose state is not past the one already sent for its experiment (it was
in the snapshot, or a late QUEUED) is dropped. When the hub may have missed a message, or after a long silence, the
store is read again and what moved on is sent. A sweep's stream completes once all its experiments have ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from app.domain.experiments import Experiment, ExperimentState
from app.events import channels
from app.events.experiments import decode_experiment
from app.events.hub import EventHub, Subscription
from app.repositories.ids import parse_object_id
from app.services.experiments import ExperimentService
from app.services.sweeps import SweepService

IDLE_SECONDS = 5.0
SILENCE_CATCH_UP_SECONDS = 30.0


def progress(state: ExperimentState) -> int:
    """States in the order an experiment enters them: queued, running, then one final state."""
    if state == ExperimentState.QUEUED:
        return 0
    return 1 if state == ExperimentState.RUNNING else 2


@dataclass(frozen=True, slots=True)
class ExperimentUpdate:
    """The snapshot (the first update, maybe empty), or experiments that entered a new state, in order."""

    experiments: tuple[Experiment, ...]
    snapshot: bool


@dataclass(frozen=True, slots=True)
class ExperimentFollower:
    experiments: ExperimentService
    sweeps: SweepService
    hub: EventHub

    async def follow(
        self, *, caller: str, pipeline_id: str | None, sweep_id: str | None
    ) -> AsyncIterator[ExperimentUpdate]:
        """The experiments of a sweep (``sweep_id``) or a pipeline: each one's current state, then its changes."""
        if sweep_id is not None:
            sweep_id = str(parse_object_id(sweep_id, resource="sweep"))
            channel = channels.sweep_experiments(sweep_id)
        else:
            assert pipeline_id is not None
            pipeline_id = str(parse_object_id(pipeline_id, resource="pipeline"))
            channel = channels.pipeline_experiments(pipeline_id)
        async with self.hub.subscribe(channel) as live:
            # Access is checked by this read: nothing is sent before it passes.
            current = await self._read(caller=caller, pipeline_id=pipeline_id, sweep_id=sweep_id)
            sent = {e.id: progress(e.state) for e in current}
            yield ExperimentUpdate(experiments=tuple(current), snapshot=True)
            while not (sweep_id is not None and _all_ended(sent)):
                fresh = await _next(live)
                if fresh is None:  # the hub may have missed a message, or a long silence: the store has it
                    fresh = await self._read(caller=caller, pipeline_id=pipeline_id, sweep_id=sweep_id)
                moved = []
                for experiment in fresh:
                    if progress(experiment.state) > sent.get(experiment.id, -1):
                        sent[experiment.id] = progress(experiment.state)
                        moved.append(experiment)
                if moved:
                    yield ExperimentUpdate(experiments=tuple(moved), snapshot=False)

    async def _read(self, *, caller: str, pipeline_id: str | None, sweep_id: str | None) -> list[Experiment]:
        """Oldest first, each as its run's state shows it (an experiment whose run ended without it)."""
        if sweep_id is not None:
            return (await self.sweeps.get(caller=caller, sweep_id=sweep_id)).experiments
        assert pipeline_id is not None
        return list(reversed(await self.experiments.of_pipeline(caller=caller, pipeline_id=pipeline_id)))


def _all_ended(sent: dict[str, int]) -> bool:
    return all(rank == progress(ExperimentState.SUCCEEDED) for rank in sent.values())


async def _next(live: Subscription) -> list[Experiment] | None:
    """The next published experiments (those queued behind the first too); None when the store must be read."""
    silent = 0.0
    while True:
        try:
            raw = await asyncio.wait_for(live.queue.get(), IDLE_SECONDS)
        except TimeoutError:
            silent += IDLE_SECONDS
            if live.may_have_missed() or silent >= SILENCE_CATCH_UP_SECONDS:
                return None
            continue
        raws = [raw]
        while not live.queue.empty():
            raws.append(live.queue.get_nowait())
        if live.may_have_missed():
            return None
        return [decode_experiment(r) for r in raws]
