"""Which environment a run's stages use, decided before the run's steps are recorded."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from workers.environments.cleanup import in_use
from workers.environments.requirements import REQUIREMENTS_FILE, Requirements, RequirementsRefused, read_requirements
from workers.environments.step import EnvironmentBuild
from workers.environments.store import EnvironmentBuildFailed, EnvironmentStore, PythonEnvironment

logger = logging.getLogger(__name__)

_of_runs: dict[str, PythonEnvironment] = {}
"""The environments of the runs this process executes, while they run."""


@dataclass(frozen=True, slots=True)
class RunEnvironment:
    environment: PythonEnvironment
    """What the run's stages use (built by the run's environment step when ``has_step``)."""
    store: EnvironmentStore
    requirements: Requirements | None = None
    refused: str | None = None
    """Why the project's requirements file cannot be used: the environment step fails with this."""
    refused_source: str = REQUIREMENTS_FILE

    @property
    def has_step(self) -> bool:
        """Whether the run shows an environment step: the project has a requirements file (usable or not)."""
        return self.requirements is not None or self.refused is not None

    @property
    def source(self) -> str:
        return self.requirements.source if self.requirements is not None else self.refused_source

    def start_step(self, on_output: Callable[[str], Awaitable[None]]) -> EnvironmentBuild:
        return EnvironmentBuild(self.store, self.requirements, on_output, refused=self.refused)


async def prepare_environment(
    store: EnvironmentStore, workspace: Path, requirements_path: str | None = None
) -> RunEnvironment:
    """The environment for a run in ``workspace``, from ``requirements_path`` (the owner's choice) or else
    ``requirements.txt``. Without a requirements file it is the plain one, built here if it is not yet (an empty
    virtualenv: quick, once per store); raises EnvironmentBuildFailed if that fails. A path the owner set whose file
    is missing is refused (the step says so), not taken for no requirements."""
    source = requirements_path or REQUIREMENTS_FILE
    try:
        requirements = await asyncio.to_thread(read_requirements, workspace, source)
        if requirements is None and requirements_path is not None:
            raise RequirementsRefused(f"{source} does not exist in the workspace")
    except RequirementsRefused as refused:
        return RunEnvironment(
            environment=store.environment_for(b""), store=store, refused=refused.message, refused_source=source
        )
    if requirements is not None:
        return RunEnvironment(
            environment=store.environment_for(requirements.content), store=store, requirements=requirements
        )
    output: list[str] = []

    async def collect(text: str) -> None:
        output.append(text)

    try:
        environment, built = await store.ensure(b"", collect)
    except EnvironmentBuildFailed:
        logger.error("the plain Python environment could not be built:\n%s", "".join(output))
        raise
    if built:
        logger.info("built the plain Python environment %s", environment.root)
    return RunEnvironment(environment=environment, store=store)


async def planned_environment(
    store: EnvironmentStore, workspace: Path, requirements_path: str | None = None
) -> tuple[str, bool] | None:
    """What a run's environment step would be, decided as ``prepare_environment`` decides it but building nothing:
    None when a run shows no step (no requirements file), else the requirements file and whether its environment
    is built already (a refused file is never built: its step fails)."""
    source = requirements_path or REQUIREMENTS_FILE
    try:
        requirements = await asyncio.to_thread(read_requirements, workspace, source)
    except RequirementsRefused:
        return source, False
    if requirements is None:
        return (source, False) if requirements_path is not None else None
    return requirements.source, store.is_built(store.environment_for(requirements.content))


@contextmanager
def serving_run(run_id: str, environment: PythonEnvironment, store: EnvironmentStore | None = None) -> Iterator[None]:
    """Make ``environment_of_run(run_id)`` answer while the run executes; with its ``store``, hold the environment
    against the cleanup meanwhile (cleanup.in_use: from before its build step until the last stage ends)."""
    _of_runs[run_id] = environment
    try:
        with in_use(store, environment) if store is not None else nullcontext():
            yield
    finally:
        _of_runs.pop(run_id, None)


def environment_of_run_names() -> set[str]:
    """The environments the runs of this process use now (never removed by the cleanup)."""
    return {environment.root.name for environment in list(_of_runs.values())}


def environment_of_run(run_id: str) -> PythonEnvironment | None:
    """The Python environment of a run this worker process executes (its folder, and what a sandbox mounts)."""
    return _of_runs.get(run_id)
