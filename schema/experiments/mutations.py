"""Mutations that start experiments and promote them in the workspace."""

from __future__ import annotations

from typing import Annotated

import strawberry

from schema.context import Info
from schema.experiments.sweep_types import (
    CancelSweepResult,
    RunSweepResult,
    Sweep,
    SweepAxisInput,
    SweepCancelled,
    SweepQueued,
)
from schema.experiments.types import (
    ApplyExperimentResult,
    BranchExperimentResult,
    CommitExperimentResult,
    Experiment,
    ExperimentApplied,
    ExperimentBranched,
    ExperimentCommitted,
    ExperimentQueued,
    ExperimentsImported,
    ExperimentsRemoved,
    ImportExperimentsResult,
    ParamOverrideInput,
    RemoveExperimentsResult,
    RunExperimentResult,
)


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
        targets: Annotated[
            list[str] | None,
            strawberry.argument(
                description="Stages or foreach/matrix groups to run with their upstream, as executePipeline's "
                "`targets`; all stages when empty."
            ),
        ] = None,
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
            targets=tuple(targets or ()),
        )
        return ExperimentQueued(experiment=Experiment.from_domain(experiment))

    @strawberry.mutation(
        description="Queue a sweep: an experiment per point of the grid's cartesian product, at most `maxParallel` "
        "running at once (0 = the worker's CPUs), each in its own copy. Answers at once, every experiment QUEUED."
    )
    async def run_sweep(
        self,
        info: Info,
        pipeline_id: strawberry.ID,
        grid: list[SweepAxisInput],
        max_parallel: int = 0,
        name: str | None = None,
        base_rev: str | None = None,
        timeout_seconds: float | None = None,
    ) -> RunSweepResult:
        await info.context.spend_work()
        settings = info.context.state.settings
        progress = await info.context.services.sweeps.run(
            caller=info.context.caller,
            pipeline_id=pipeline_id,
            grid=[a.to_domain() for a in grid],
            max_parallel=max_parallel,
            name=name,
            base_rev=base_rev,
            timeout_seconds=timeout_seconds if timeout_seconds is not None else settings.default_run_timeout_seconds,
        )
        return SweepQueued(sweep=Sweep.from_domain(progress))

    @strawberry.mutation(description="Cancel every experiment of a sweep that has not ended.")
    async def cancel_sweep(self, info: Info, id: strawberry.ID) -> CancelSweepResult:
        progress = await info.context.services.sweeps.cancel(caller=info.context.caller, sweep_id=id)
        return SweepCancelled(sweep=Sweep.from_domain(progress))

    @strawberry.mutation(
        description="Make a saved (SUCCEEDED) experiment a git branch of the workspace, as `dvc exp branch` does: "
        "`refs/heads/<branch>` points at the experiment's commit. The workspace's files and checkout do not change. "
        "ValidationError for a name git refuses; ConflictError when the branch exists or the experiment was not saved."
    )
    async def branch_experiment(self, info: Info, id: strawberry.ID, branch: str) -> BranchExperimentResult:
        experiment, sha = await info.context.services.experiments.branch(
            caller=info.context.caller, experiment_id=id, branch=branch
        )
        return ExperimentBranched(experiment=Experiment.from_domain(experiment), branch=branch, sha=sha)

    @strawberry.mutation(
        description="Remove ended experiments, as `dvc exp remove` does: their `refs/exps` leave the workspace and "
        "`dvc exp show` lists them no more; the service forgets them (their runs stay in the run history). Nothing is "
        "removed when one id is unknown (NotFoundError) or one experiment has not ended (ConflictError)."
    )
    async def remove_experiments(self, info: Info, ids: list[strawberry.ID]) -> RemoveExperimentsResult:
        removed = await info.context.services.experiments.remove(
            caller=info.context.caller, experiment_ids=[str(i) for i in ids]
        )
        return ExperimentsRemoved(ids=[strawberry.ID(e.id) for e in removed], names=[e.name for e in removed])

    @strawberry.mutation(
        description="Write a saved (SUCCEEDED) experiment's params and results into the workspace, as `dvc exp apply` "
        "does (outputs from DVC's cache; the checkout stays on its branch). ConflictError while tracked files have "
        "uncommitted changes, which applying would overwrite, unless `force`."
    )
    async def apply_experiment(self, info: Info, id: strawberry.ID, force: bool = False) -> ApplyExperimentResult:
        experiment, changed = await info.context.services.experiments.apply(
            caller=info.context.caller, experiment_id=id, force=force
        )
        return ExperimentApplied(experiment=Experiment.from_domain(experiment), changed_files=changed)

    @strawberry.mutation(
        description="Make a saved (SUCCEEDED) experiment a commit on the workspace's current branch, authored by you: "
        "its params and results written as `dvc exp apply` writes them, then one commit of exactly the files it "
        "changed against its base. ConflictError when the branch moved on from the experiment's base (branch it "
        "instead), or while tracked files have uncommitted changes, unless `force`; ValidationError for an empty "
        "message."
    )
    async def commit_experiment(
        self, info: Info, id: strawberry.ID, message: str, force: bool = False
    ) -> CommitExperimentResult:
        await info.context.spend_work()
        experiment, made = await info.context.services.experiments.commit(
            caller=info.context.caller, experiment_id=id, message=message, force=force
        )
        return ExperimentCommitted(
            experiment=Experiment.from_domain(experiment), branch=made.branch, sha=made.sha, files=made.files
        )

    @strawberry.mutation(
        description="List the experiments DVC itself made in the project's repository: those pushed to its origin "
        "(`dvc exp push`; fetched as `dvc exp pull` fetches them, never replacing a ref the workspace has) and those "
        "in the workspace's `refs/exps`, with their params and metrics as `dvc exp show` shows them. A cloned "
        "project lists them when it is created; this lists the ones made since."
    )
    async def import_experiments(self, info: Info, project_id: strawberry.ID) -> ImportExperimentsResult:
        await info.context.spend_work()
        imported, note = await info.context.services.experiments.import_from_dvc(
            caller=info.context.caller, project_id=project_id
        )
        return ExperimentsImported(experiments=[Experiment.from_domain(e) for e in imported], note=note)
