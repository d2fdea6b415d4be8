"""Sweeps: the cartesian product of a grid of params as experiments, run in parallel up to a limit, cancelled as a
whole. Each experiment is an ordinary one (app.services.experiments); the worker keeps a sweep to its limit."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from bson import ObjectId

from app.domain.errors import Conflict, InvalidInput, NotFound
from app.domain.experiments import (
    DEFAULT_PARAMS_FILE,
    ExperimentsTable,
    ParamOverride,
    SweepAxis,
    SweepProgress,
    check_grid,
    default_name,
    sweep_points,
)
from app.domain.users import Role
from app.repositories.sweeps import SweepRepository
from app.services.experiments import ExperimentService, check_common


@dataclass(frozen=True, slots=True)
class SweepService:
    experiments: ExperimentService
    sweeps: SweepRepository

    async def run(
        self,
        *,
        caller: str,
        pipeline_id: str,
        grid: list[SweepAxis],
        max_parallel: int,
        name: str | None,
        base_rev: str | None,
        timeout_seconds: float,
    ) -> SweepProgress:
        """Queue every point of the grid; nothing is stored unless all of them can be."""
        axes = [SweepAxis(file=a.file or DEFAULT_PARAMS_FILE, key=a.key, values=a.values) for a in grid]
        issues = check_grid(axes, max_parallel) + check_common(name, base_rev, timeout_seconds)
        if issues:
            raise InvalidInput(issues)
        pipeline = await self.experiments.usable_pipeline(caller=caller, pipeline_id=pipeline_id)
        sweep_id = str(ObjectId())
        chosen = name or default_name(sweep_id).replace("exp-", "sweep-", 1)
        points = sweep_points(axes)
        names = [f"{chosen}-{index + 1}" for index in range(len(points))]
        await self.experiments.check_names_free(pipeline.project_id, names)
        # DVC's verdict on every key and every value at once: they are applied in turn to copies of the files.
        every_value = [ParamOverride(file=a.file, key=a.key, value=v).to_dict() for a in axes for v in a.values]
        await self.experiments.jobs.call("check_experiment", pipeline.project_id, base_rev, every_value)
        sweep = await self.sweeps.create(
            sweep_id=sweep_id,
            project_id=pipeline.project_id,
            pipeline_id=pipeline.id,
            name=chosen,
            grid=axes,
            max_parallel=max_parallel,
            base_rev=base_rev,
            created_by=caller,
        )
        queued = []
        try:
            for point, experiment_name in zip(points, names, strict=True):
                queued.append(
                    await self.experiments.queue(
                        pipeline,
                        caller=caller,
                        experiment_id=str(ObjectId()),
                        name=experiment_name,
                        overrides=point,
                        base_rev=base_rev,
                        timeout_seconds=timeout_seconds,
                        sweep_id=sweep.id,
                        max_parallel=max_parallel,
                    )
                )
        except BaseException:
            # All or nothing: what was queued is cancelled (a worker may have taken it already) or withdrawn.
            await self.sweeps.request_cancel(sweep.id)
            for experiment in queued:
                if experiment.run_id is None:
                    continue
                with contextlib.suppress(Exception):
                    await self.experiments.runs.cancel(caller=caller, run_id=experiment.run_id)
            raise
        return SweepProgress(sweep=sweep, experiments=queued)

    async def get(self, *, caller: str, sweep_id: str) -> SweepProgress:
        sweep = await self.sweeps.get(sweep_id)
        try:
            await self.experiments.runs.access.project(caller=caller, project_id=sweep.project_id, needs=Role.VIEWER)
        except NotFound:
            raise NotFound("sweep", sweep_id) from None
        experiments = [
            await self.experiments.reconciled(e) for e in await self.experiments.experiments.of_sweep(sweep.id)
        ]
        return SweepProgress(sweep=sweep, experiments=experiments)

    async def cancel(self, *, caller: str, sweep_id: str) -> SweepProgress:
        """Cancel every experiment of the sweep that has not ended (queued ones at once, running ones within
        cancelRun's bound); the sweep ends CANCELLED once they have."""
        progress = await self.get(caller=caller, sweep_id=sweep_id)
        await self.experiments.runs.access.project(
            caller=caller, project_id=progress.sweep.project_id, needs=Role.EDITOR
        )
        if progress.state.finished:
            raise Conflict(f"the sweep already finished ({progress.state.value})")
        await self.sweeps.request_cancel(progress.sweep.id)
        for experiment in progress.experiments:
            if not experiment.state.finished and experiment.run_id is not None:
                with contextlib.suppress(Conflict):  # it ended meanwhile
                    await self.experiments.runs.cancel(caller=caller, run_id=experiment.run_id)
        return await self.get(caller=caller, sweep_id=sweep_id)

    async def table(
        self, *, caller: str, sweep_id: str, sort_by: tuple[str, str] | None, descending: bool
    ) -> ExperimentsTable:
        progress = await self.get(caller=caller, sweep_id=sweep_id)
        return await self.experiments.table_of(progress.experiments, sort_by=sort_by, descending=descending)
