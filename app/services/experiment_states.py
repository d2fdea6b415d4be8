"""The one writer of an experiment's state: each change is stored, then published (app.events.experiments).

The API stores the QUEUED experiment; its job (workers/experiments/job.py) the rest, in turn. A failed publish is
logged and not raised: the state is stored, and experimentUpdates reads the store again when the hub may have missed
a message or after a long silence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.domain.experiments import Experiment, ExperimentState
from app.domain.results import ResultsSnapshot
from app.events.experiments import publish_experiment
from app.repositories.experiments import ExperimentRepository

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExperimentStates:
    experiments: ExperimentRepository
    redis: Redis

    async def create(self, **fields: Any) -> Experiment:
        """A new QUEUED experiment (``ExperimentRepository.create``'s fields)."""
        return await self._published(await self.experiments.create(**fields))

    async def found(self, experiment: Experiment) -> bool:
        """One made by DVC, found in the repository, stored in its final state; False when its name is taken."""
        if not await self.experiments.add_found(experiment):
            return False
        await self._published(experiment)
        return True

    async def started(self, experiment_id: str, *, base_sha: str, baseline: ResultsSnapshot) -> Experiment | None:
        """QUEUED -> RUNNING; None when it was not QUEUED any more (nothing is published then)."""
        changed = await self.experiments.started(experiment_id, base_sha=base_sha, baseline=baseline)
        return None if changed is None else await self._published(changed)

    async def finish(
        self,
        experiment_id: str,
        *,
        state: ExperimentState,
        error: str | None,
        exp_ref: str | None = None,
        exp_rev: str | None = None,
    ) -> Experiment | None:
        """The final state, once; None when it had one already (nothing is published then)."""
        changed = await self.experiments.finish(
            experiment_id, state=state, error=error, exp_ref=exp_ref, exp_rev=exp_rev
        )
        return None if changed is None else await self._published(changed)

    async def _published(self, experiment: Experiment) -> Experiment:
        try:
            await publish_experiment(self.redis, experiment)
        except (RedisError, OSError):
            logger.warning(
                "experiment %s: its %s state is stored but was not published",
                experiment.id,
                experiment.state.value,
                exc_info=True,
            )
        return experiment
