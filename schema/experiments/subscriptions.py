"""Live experiments over graphql-transport-ws: a thin generator over app.services.experiment_updates."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from app.domain.errors import InvalidInput, Issue
from schema.context import Info
from schema.experiments.types import Experiment


@strawberry.type(description="Experiments of a sweep or a pipeline: the snapshot first, then those that moved on.")
class ExperimentUpdate:
    snapshot: bool = strawberry.field(
        description="True for the first update only: every experiment (oldest first) as it stood when you subscribed."
    )
    experiments: list[Experiment] = strawberry.field(
        description="The snapshot's experiments, or those that entered a new state (queued, running, a final one), "
        "in the order they entered it; each state of each experiment comes once, in order."
    )


@strawberry.type
class ExperimentSubscriptions:
    @strawberry.subscription(
        description="A sweep's or a pipeline's experiments: the snapshot, then each state change as it is recorded, "
        "with its results (`metrics`, once its run kept them). A sweep's stream completes when all its experiments "
        "have ended; a pipeline's goes on."
    )
    async def experiment_updates(
        self, info: Info, sweep_id: strawberry.ID | None = None, pipeline_id: strawberry.ID | None = None
    ) -> AsyncGenerator[ExperimentUpdate, None]:
        if (pipeline_id is None) == (sweep_id is None):
            raise InvalidInput([Issue(path="sweepId", message="give either sweepId or pipelineId")])
        follower = info.context.state.experiment_follower
        updates = follower.follow(
            caller=info.context.caller,
            pipeline_id=None if pipeline_id is None else str(pipeline_id),
            sweep_id=None if sweep_id is None else str(sweep_id),
        )
        async for update in updates:
            yield ExperimentUpdate(
                snapshot=update.snapshot, experiments=[Experiment.from_domain(e) for e in update.experiments]
            )
