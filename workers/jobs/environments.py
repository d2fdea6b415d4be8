"""The worker's cleanup of the projects' Python environments (workers/environments/cleanup.py), as an arq job: at
start-up and then every ENVIRONMENT_CLEANUP_SECONDS."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from workers.context import WorkerResources, resources_of
from workers.environments.cleanup import DAY_SECONDS, remove_unused
from workers.environments.preparation import environment_of_run_names
from workers.environments.requirements import REQUIREMENTS_FILE, RequirementsRefused, read_requirements
from workers.environments.store import EnvironmentStore, environment_key

logger = logging.getLogger(__name__)


async def clean_environments(ctx: dict[str, Any]) -> list[str]:
    """Remove the environments no project needs and no run used for ENVIRONMENT_RETENTION_DAYS; their names."""
    resources = resources_of(ctx)
    store = EnvironmentStore(resources.settings.environments_root)
    keep = await current_environments(resources) | environment_of_run_names()
    removed = await asyncio.to_thread(
        remove_unused, store, keep, retention_seconds=resources.settings.environment_retention_days * DAY_SECONDS
    )
    if removed:
        logger.info("removed %d unused Python environments", len(removed))
    return removed


async def current_environments(resources: WorkerResources) -> set[str]:
    """The environment each project's requirements file gives as it is now, and the plain one."""
    keep = {environment_key(b"")}
    for project_id, requirements_path in await resources.projects.requirements_paths():
        workspace = resources.workspace(project_id)
        try:
            requirements = await asyncio.to_thread(read_requirements, workspace, requirements_path or REQUIREMENTS_FILE)
        except (RequirementsRefused, OSError):
            continue  # a refused file builds nothing
        if requirements is not None:
            keep.add(environment_key(requirements.content))
    return keep
