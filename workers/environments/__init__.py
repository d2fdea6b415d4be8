"""Each project's own Python environment: a uv virtualenv built from its requirements file, as a step of the run.

``prepare_environment`` (before a run's stages) reads the workspace's ``requirements.txt`` and says which
environment the run's stages use; the run's ``environment`` step (step.py) builds it, or finds it built, before the
first stage. A project without requirements gets the plain environment (an empty virtualenv shared by all): never
the worker's own interpreter, so the service's packages are not importable from a stage. ``environment_of_run``
gives the environment of a run this worker executes (the sandbox mounts its ``read_only_folders``).
"""

from workers.environments.preparation import RunEnvironment, environment_of_run, prepare_environment
from workers.environments.requirements import REQUIREMENTS_FILE, Requirements, RequirementsRefused
from workers.environments.step import EnvironmentBuild
from workers.environments.store import EnvironmentBuildFailed, EnvironmentStore, PythonEnvironment

__all__ = [
    "REQUIREMENTS_FILE",
    "EnvironmentBuild",
    "EnvironmentBuildFailed",
    "EnvironmentStore",
    "PythonEnvironment",
    "Requirements",
    "RequirementsRefused",
    "RunEnvironment",
    "environment_of_run",
    "prepare_environment",
]
