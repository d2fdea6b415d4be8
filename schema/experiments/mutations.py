"""Mutations that start experiments."""

from __future__ import annotations

import strawberry

from schema.context import Info
from schema.experiments.types import Experiment, ExperimentQueued, ParamOverrideInput, RunExperimentResult


@strawberry.type
class ExperimentMutations:
    @strawberry.mutation(
        description="Queue an experiment: a run of the pipeline with `setParams` overrides (as `dvc exp run -S`), in "
        "a copy of the workspace at `baseRev` (default: the last commit plus the working tree's changes), saved as a "
        "DVC experiment when it succeeds. The workspace's files never change. Answers at once, QUEUED."
    )
    async def run_experiment(
        self,
        info: Info,
        pipeline_id: strawberry.ID,
        set_params: list[ParamOverrideInput],
        name: str | None = None,
        base_rev: str | None = None,
        timeout_seconds: float | None = None,
    ) -> RunExperimentResult:
        await info.context.spend_work()
        settings = info.context.state.settings
        experiment = await info.context.services.experiments.run(
            caller=info.context.caller,
            pipeline_id=pipeline_id,
            set_params=[o.to_domain() for o in set_params],
            name=name,
            base_rev=base_rev,
            timeout_seconds=timeout_seconds if timeout_seconds is not None else settings.default_run_timeout_seconds,
        )
        return ExperimentQueued(experiment=Experiment.from_domain(experiment))
