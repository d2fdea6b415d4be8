"""Live runs over graphql-transport-ws: async generators over the API's Redis event hub."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from app.events import channels
from schema.context import Info
from schema.runs.types import Run, RunUpdate, RunUpdateBatch


@strawberry.type
class RunSubscriptions:
    @strawberry.subscription(
        description="A run's snapshot, then every change in order (run state, stage state, log text); "
        "completes when the run ends. Pass `after` (a seq) to replay what you missed."
    )
    async def run_updates(
        self, info: Info, run_id: strawberry.ID, after: int | None = None
    ) -> AsyncGenerator[RunUpdate, None]:
        follower = info.context.state.follower
        async for update in follower.follow(caller=info.context.caller, run_id=run_id, after=after):
            yield RunUpdate.from_domain(update)

    @strawberry.subscription(
        description="The same stream as `runUpdates`, several updates per message: each message carries every "
        "update that arrived together (the first one the SNAPSHOT). Made for dashboards following busy runs: far "
        "fewer messages at high event rates, same order and resume semantics (`after`, `lastSeq`)."
    )
    async def run_update_batches(
        self, info: Info, run_id: strawberry.ID, after: int | None = None
    ) -> AsyncGenerator[RunUpdateBatch, None]:
        follower = info.context.state.follower
        async for batch in follower.follow_batches(caller=info.context.caller, run_id=run_id, after=after):
            yield RunUpdateBatch.from_domain(batch)

    @strawberry.subscription(description="A pipeline's new runs and their state changes.")
    async def pipeline_runs(self, info: Info, pipeline_id: strawberry.ID) -> AsyncGenerator[Run, None]:
        services = info.context.services
        pipeline = await services.pipelines.get(caller=info.context.caller, pipeline_id=pipeline_id)
        watched = info.context.state.follower.watch(
            caller=info.context.caller, channel=channels.pipeline_runs(pipeline.id)
        )
        async for run in watched:
            yield Run.from_domain(run)

    @strawberry.subscription(description="A project's new runs and their state changes.")
    async def project_runs(self, info: Info, project_id: strawberry.ID) -> AsyncGenerator[Run, None]:
        project = await info.context.services.projects.get(caller=info.context.caller, project_id=project_id)
        watched = info.context.state.follower.watch(
            caller=info.context.caller, channel=channels.project_runs(project.id)
        )
        async for run in watched:
            yield Run.from_domain(run)
