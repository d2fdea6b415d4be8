"""Experiments: queue one, list them, read one, and the table that compares them. A worker does the work
(workers/experiments): a copy of the workspace, the overrides, the run, the DVC experiment."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from bson import ObjectId
from redis.asyncio import Redis

from app.domain.errors import Conflict, InvalidInput, Issue, NotFound
from app.domain.experiments import (
    DEFAULT_PARAMS_FILE,
    Experiment,
    ExperimentCommit,
    ExperimentsTable,
    ExperimentState,
    ParamOverride,
    build_table,
    check_name,
    check_overrides,
    default_name,
)
from app.domain.pages import Page
from app.domain.pipelines import Pipeline
from app.domain.runs import Run, RunOptions, RunState, StageRun, StageRunState, Trigger
from app.domain.users import Role
from app.events.publisher import announce_run
from app.jobs import JobDispatcher
from app.repositories.experiments import ExperimentRepository
from app.repositories.results import ResultsRepository
from app.services.experiment_states import ExperimentStates
from app.services.pipelines import check_selection
from app.services.results import check_revision
from app.services.runs import MAX_TIMEOUT_SECONDS, RunService, run_job_id


@dataclass(frozen=True, slots=True)
class ExperimentService:
    runs: RunService
    experiments: ExperimentRepository
    results: ResultsRepository
    jobs: JobDispatcher
    redis: Redis
    states: ExperimentStates

    async def run(
        self,
        *,
        caller: str,
        pipeline_id: str,
        set_params: list[ParamOverride],
        name: str | None,
        base_rev: str | None,
        timeout_seconds: float,
        targets: tuple[str, ...] = (),
    ) -> Experiment:
        """Queue an experiment; nothing is stored unless the pipeline, the base, the targets and every override are
        good. ``targets``: the stages to run with their upstream (as executePipeline's), all when empty."""
        overrides = [ParamOverride(file=o.file or DEFAULT_PARAMS_FILE, key=o.key, value=o.value) for o in set_params]
        issues = check_overrides(overrides) + check_common(name, base_rev, timeout_seconds)
        if issues:
            raise InvalidInput(issues)
        pipeline = await self.usable_pipeline(caller=caller, pipeline_id=pipeline_id)
        chosen_stages = check_selection(targets, False, pipeline.stages)
        if chosen_stages:
            raise InvalidInput(chosen_stages)
        experiment_id = str(ObjectId())
        chosen = name or default_name(experiment_id)
        await self.check_names_free(pipeline.project_id, [chosen])
        # DVC's verdict on the base and on each key (it exists, the value parses), asked before anything is stored.
        await self.jobs.call("check_experiment", pipeline.project_id, base_rev, [o.to_dict() for o in overrides])
        return await self.queue(
            pipeline,
            caller=caller,
            experiment_id=experiment_id,
            name=chosen,
            overrides=overrides,
            base_rev=base_rev,
            timeout_seconds=timeout_seconds,
            targets=targets,
        )

    async def usable_pipeline(self, *, caller: str, pipeline_id: str) -> Pipeline:
        """The pipeline, if the caller may run it (NotFound as if it did not exist otherwise) and it is valid."""
        pipeline = await self.runs.pipeline_service.get(caller=caller, pipeline_id=pipeline_id, needs=Role.EDITOR)
        if pipeline.validation is None or not pipeline.validation.valid:
            report = await self.runs.pipeline_service.validate(caller=caller, pipeline_id=pipeline.id)
            if not report.valid:
                raise InvalidInput(report.issues, "the pipeline is invalid; nothing was queued")
        return pipeline

    async def check_names_free(self, project_id: str, names: list[str]) -> None:
        for name in names:
            if await self.experiments.name_taken(project_id=project_id, name=name):
                raise Conflict(f"the project already has an experiment named {name!r}")

    async def queue(
        self,
        pipeline: Pipeline,
        *,
        caller: str,
        experiment_id: str,
        name: str,
        overrides: list[ParamOverride],
        base_rev: str | None,
        timeout_seconds: float,
        sweep_id: str | None = None,
        max_parallel: int = 0,
        targets: tuple[str, ...] = (),
    ) -> Experiment:
        """Store the experiment and its QUEUED run and queue its job; nothing stays stored if that fails."""
        run = await self.runs.runs.create(
            project_id=pipeline.project_id,
            pipeline_id=pipeline.id,
            pipeline_name=pipeline.name,
            options=RunOptions(timeout_seconds=timeout_seconds, targets=targets),
            triggered_by=caller,
            trigger=Trigger.EXPERIMENT,
            stages=[StageRun(name=s.name, command=s.cmd, state=StageRunState.PENDING) for s in pipeline.stages],
        )
        try:
            experiment = await self.states.create(
                experiment_id=experiment_id,
                project_id=pipeline.project_id,
                pipeline_id=pipeline.id,
                pipeline_name=pipeline.name,
                name=name,
                base_rev=base_rev,
                set_params=overrides,
                run_id=run.id,
                created_by=caller,
                sweep_id=sweep_id,
                max_parallel=max_parallel,
            )
        except BaseException:
            await self.runs.runs.withdraw(run.id)
            raise
        # The job has the run's job id: cancelRun's abort reaches it, and the reaper asks arq about it.
        outcomes = await asyncio.gather(
            self.jobs.submit(
                "execute_experiment",
                experiment.id,
                queue_name=self.runs.settings.runs_queue_name,
                job_id=run_job_id(run.id),
            ),
            announce_run(
                self.redis, run_id=run.id, state=run.state.value, project_id=run.project_id, pipeline_id=run.pipeline_id
            ),
            return_exceptions=True,
        )
        if isinstance(outcomes[0], BaseException):
            await self.withdraw(experiment)
            raise outcomes[0]
        if isinstance(outcomes[1], BaseException):
            raise outcomes[1]
        return experiment

    async def withdraw(self, experiment: Experiment) -> None:
        """Delete an experiment no worker has taken (its job could not be queued)."""
        if experiment.run_id is not None:
            await self.runs.runs.withdraw(experiment.run_id)
        await self.experiments.delete(experiment.id)

    async def get(self, *, caller: str, experiment_id: str) -> Experiment:
        experiment = await self.experiments.get(experiment_id)
        await self._check_access(caller, experiment)
        return await self.reconciled(experiment)

    async def branch(self, *, caller: str, experiment_id: str, branch: str) -> tuple[Experiment, str]:
        """Make the saved experiment a git branch of the workspace (``dvc exp branch``); the branch's commit.

        Conflict unless the experiment SUCCEEDED (only then is it a DVC experiment) or when the branch exists;
        InvalidInput for a name git refuses. Nothing changes in the workspace's files."""
        experiment = await self.editable(caller=caller, experiment_id=experiment_id)
        if experiment.state != ExperimentState.SUCCEEDED:
            raise Conflict(f"experiment {experiment.name!r} is {experiment.state.value}; only a saved one is branched")
        answer = await self.jobs.call("branch_experiment", experiment.id, branch)
        return experiment, str(answer["sha"])

    async def apply(self, *, caller: str, experiment_id: str, force: bool) -> tuple[Experiment, list[str]]:
        """Write the saved experiment's params and results into the workspace (``dvc exp apply``); the files that then
        differ from the last commit. Conflict unless it SUCCEEDED, or while tracked files have uncommitted changes
        (unless ``force``: DVC then overwrites them)."""
        experiment = await self.editable(caller=caller, experiment_id=experiment_id)
        if experiment.state != ExperimentState.SUCCEEDED:
            raise Conflict(f"experiment {experiment.name!r} is {experiment.state.value}; only a saved one is applied")
        answer = await self.jobs.call("apply_experiment", experiment.id, force)
        return experiment, [str(path) for path in answer["changed"]]

    async def commit(
        self, *, caller: str, experiment_id: str, message: str, force: bool
    ) -> tuple[Experiment, ExperimentCommit]:
        """Make the saved experiment a commit on the workspace's current branch, authored by the caller: its files in
        the working tree (``dvc exp apply``), then one commit of what it changed against its base. InvalidInput for
        an empty or long message; Conflict unless it SUCCEEDED, when the branch moved on from its base, or while
        tracked files have uncommitted changes (unless ``force``)."""
        issues = check_commit_message(message)
        if issues:
            raise InvalidInput(issues)
        experiment = await self.editable(caller=caller, experiment_id=experiment_id)
        if experiment.state != ExperimentState.SUCCEEDED:
            raise Conflict(f"experiment {experiment.name!r} is {experiment.state.value}; only a saved one is committed")
        answer = await self.jobs.call("commit_experiment", experiment.id, message, caller, force)
        made = ExperimentCommit(
            sha=str(answer["sha"]), branch=str(answer["branch"]), files=[str(f) for f in answer["files"]]
        )
        return experiment, made

    async def import_from_dvc(self, *, caller: str, project_id: str) -> tuple[list[Experiment], str | None]:
        """List the experiments DVC made in the project's repository that are not listed yet: those pushed to its
        origin (``dvc exp push``, fetched as ``dvc exp pull`` does) and those in the workspace's ``refs/exps``; the
        new ones, and a note on what was left out."""
        project = await self.runs.access.project(caller=caller, project_id=project_id, needs=Role.EDITOR)
        answer = await self.jobs.call("import_experiments", project.id, caller)
        imported = [await self.experiments.get(str(i)) for i in answer["ids"]]
        note = answer.get("note")
        return imported, None if note is None else str(note)

    async def remove(self, *, caller: str, experiment_ids: list[str]) -> list[Experiment]:
        """Remove ended experiments from DVC (``dvc exp remove``: their ``refs/exps`` go) and from the store.

        Every id is checked first: nothing is removed when one is unknown (NotFound), still queued or running
        (Conflict: cancel it first), or the list is empty, too long or repeats an id (InvalidInput). Their runs stay
        in the run history."""
        issues = check_removal(experiment_ids)
        if issues:
            raise InvalidInput(issues)
        experiments = [await self.editable(caller=caller, experiment_id=i) for i in experiment_ids]
        running = [e.name for e in experiments if not e.state.finished]
        if running:
            raise Conflict(f"experiments {', '.join(running)} have not ended; cancel them first (nothing was removed)")
        by_project: dict[str, list[Experiment]] = {}
        for experiment in experiments:
            by_project.setdefault(experiment.project_id, []).append(experiment)
        for project_id, of_project in by_project.items():
            refs = [e.exp_ref for e in of_project if e.exp_ref is not None]
            if refs:
                await self.jobs.call("remove_experiments", project_id, refs)
            await self.experiments.delete_many([e.id for e in of_project])
        return experiments

    async def editable(self, *, caller: str, experiment_id: str) -> Experiment:
        """The experiment, if the caller may change its project (NotFound as if it did not exist otherwise)."""
        experiment = await self.experiments.get(experiment_id)
        await self._check_access(caller, experiment, needs=Role.EDITOR)
        return await self.reconciled(experiment)

    async def _check_access(self, caller: str, experiment: Experiment, needs: Role = Role.VIEWER) -> None:
        # An experiment of a project the caller is not a member of is reported exactly like a missing one.
        try:
            await self.runs.access.project(caller=caller, project_id=experiment.project_id, needs=needs)
        except NotFound:
            raise NotFound("experiment", experiment.id) from None

    async def reconciled(self, experiment: Experiment) -> Experiment:
        """An experiment whose run ended without its worker ending the experiment (the worker died, or the run was
        cancelled before a worker took it) is shown with its run's final state."""
        if experiment.state.finished or experiment.run_id is None:
            return experiment
        run = await self.runs.runs.get(experiment.run_id)
        return _with_run_state(experiment, run)

    async def list_page(
        self, *, caller: str, pipeline_id: str, first: int, after: str | None, state: ExperimentState | None = None
    ) -> Page[Experiment]:
        pipeline = await self.runs.pipeline_service.get(caller=caller, pipeline_id=pipeline_id)
        page = await self.experiments.list_page(pipeline_id=pipeline.id, first=first, after=after, state=state)
        items = [await self.reconciled(e) for e in page.items]
        if state is not None:  # one whose run ended without its worker ending it shows its run's state instead
            items = [e for e in items if e.state == state]
        return Page(items=items, has_next_page=page.has_next_page)

    async def table(
        self, *, caller: str, pipeline_id: str, sort_by: tuple[str, str] | None, descending: bool
    ) -> ExperimentsTable:
        experiments = await self.of_pipeline(caller=caller, pipeline_id=pipeline_id)
        return await self.table_of(experiments, sort_by=sort_by, descending=descending)

    async def of_pipeline(self, *, caller: str, pipeline_id: str) -> list[Experiment]:
        """The pipeline's experiments (up to the table's limit), newest first, as their runs' states show them."""
        pipeline = await self.runs.pipeline_service.get(caller=caller, pipeline_id=pipeline_id)
        return [await self.reconciled(e) for e in await self.experiments.of_pipeline(pipeline.id)]

    async def table_of(
        self, experiments: list[Experiment], *, sort_by: tuple[str, str] | None, descending: bool
    ) -> ExperimentsTable:
        found = await self.results.get_many([e.run_id for e in experiments if e.run_id is not None])
        snapshots = {e.id: found[e.run_id].snapshot for e in experiments if e.run_id is not None and e.run_id in found}
        # One made by DVC has no run: its params and metrics were read from its commit when it was found.
        snapshots |= {e.id: e.results for e in experiments if e.results is not None}
        return build_table(experiments, snapshots, sort_by=sort_by, descending=descending)


MAX_REMOVED_AT_ONCE = 100
MAX_COMMIT_MESSAGE_LENGTH = 10_000


def check_commit_message(message: str) -> list[Issue]:
    if not message.strip():
        return [Issue(path="message", message="give a commit message")]
    if len(message) > MAX_COMMIT_MESSAGE_LENGTH or "\0" in message:
        return [Issue(path="message", message=f"at most {MAX_COMMIT_MESSAGE_LENGTH} characters, no NUL")]
    return []


def check_removal(experiment_ids: list[str]) -> list[Issue]:
    if not experiment_ids:
        return [Issue(path="ids", message="give at least one experiment")]
    if len(experiment_ids) > MAX_REMOVED_AT_ONCE:
        return [Issue(path="ids", message=f"at most {MAX_REMOVED_AT_ONCE} experiments at once")]
    if len(set(experiment_ids)) != len(experiment_ids):
        return [Issue(path="ids", message="an experiment is given twice")]
    return []


def check_common(name: str | None, base_rev: str | None, timeout_seconds: float) -> list[Issue]:
    issues = [] if name is None else check_name(name)
    if not 0 < timeout_seconds <= MAX_TIMEOUT_SECONDS:
        issues.append(Issue(path="timeoutSeconds", message=f"must be between 1 and {MAX_TIMEOUT_SECONDS}"))
    if base_rev is not None:
        try:
            check_revision(base_rev, path="baseRev")
        except InvalidInput as bad:
            issues += bad.issues
    return issues


def _with_run_state(experiment: Experiment, run: Run) -> Experiment:
    # A SUCCEEDED run's experiment is being saved: it stays RUNNING until its worker says how saving went.
    if not run.state.finished or run.state == RunState.SUCCEEDED:
        return experiment
    return replace(
        experiment,
        state=ExperimentState.of_run(run.state),
        finished_at=experiment.finished_at or run.finished_at,
        error=experiment.error or run.error,
    )
