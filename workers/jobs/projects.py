"""Creating a project's workspace (empty or cloned) and deleting it."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

from app.domain.errors import DomainError, WorkspaceError
from app.domain.names import redact_repository_url
from app.domain.pipelines import PipelineSource
from app.jobs_protocol import JobPayload, ok
from workers import dvcops, sandbox
from workers.context import WorkerResources, resources_of
from workers.experiments.found import import_found
from workers.experiments.importing import fetch_experiment_refs
from workers.jobs.common import answers_domain_errors, report_from
from workers.locks import workspace_lock

logger = logging.getLogger(__name__)


def pipeline_name_for(path: str) -> str:
    """A name for a dvc.yaml found in a repository: its folder, with '/' as '-' ('root' at the top)."""
    folder = path.rpartition("/")[0]
    return folder.replace("/", "-") if folder else "root"


def _forget_credentials(root: Path, shown_url: str) -> None:
    subprocess.run(
        ["git", "remote", "set-url", "origin", shown_url], cwd=root, check=True, capture_output=True, timeout=30
    )


@answers_domain_errors
async def init_project(ctx: dict[str, Any], project_id: str, repository_url: str | None) -> JobPayload:
    resources = resources_of(ctx)
    root = resources.workspace(project_id)
    async with workspace_lock(
        resources.redis, project_id, wait_seconds=resources.settings.workspace_write_wait_seconds
    ):
        # A retried job starts over: nothing in a workspace that is still initializing is the user's yet.
        if root.exists():
            await asyncio.to_thread(shutil.rmtree, root)
        await resources.pipelines.delete_for_project(project_id)
        await asyncio.to_thread(dvcops.init_workspace, root, repository_url)
        if repository_url:
            # While the clone's URL still has its credentials: the experiments DVC pushed there (refs/exps).
            await _fetch_experiments(root)
        if repository_url and redact_repository_url(repository_url) != repository_url:
            # The clone keeps its URL in .git/config, where stage commands can read it: keep no credentials there.
            await asyncio.to_thread(_forget_credentials, root, redact_repository_url(repository_url))
        await asyncio.to_thread(sandbox.prepare_workspace, root)  # writable by its stages' sandboxed user
        try:
            discovered = await asyncio.to_thread(dvcops.discover_checked_pipelines, root)
            for path, stages, issues in discovered:
                await resources.pipelines.insert(
                    project_id=project_id,
                    name=pipeline_name_for(path),
                    path=path,
                    description=None,
                    source=PipelineSource.REPOSITORY,
                    stages=stages,
                    validation=report_from(issues),
                )
        except DomainError:
            await resources.pipelines.delete_for_project(project_id)
            await asyncio.to_thread(shutil.rmtree, root, True)
            raise
        if repository_url and discovered:
            await _list_dvc_experiments(resources, project_id)
        await resources.projects.mark_ready(project_id)
    return ok(pipelines=[path for path, _, _ in discovered])


async def _fetch_experiments(root: Path) -> None:
    try:
        await asyncio.to_thread(fetch_experiment_refs, root)
    except WorkspaceError:
        # The clone is usable without them; importExperiments tries again.
        logger.warning("could not fetch the experiments of the repository cloned into %s", root, exc_info=True)


async def _list_dvc_experiments(resources: WorkerResources, project_id: str) -> None:
    """The experiments DVC made in the cloned repository, listed as the project's (the owner's)."""
    project = await resources.projects.get(project_id)
    try:
        ids, note = await import_found(resources, project_id, created_by=project.owner, remote=None)
    except DomainError:
        logger.warning("project %s: the repository's DVC experiments could not be listed", project_id, exc_info=True)
        return
    logger.info("project %s: %d experiments made by DVC listed%s", project_id, len(ids), f" ({note})" if note else "")


@answers_domain_errors
async def delete_project(ctx: dict[str, Any], project_id: str) -> JobPayload:
    resources = resources_of(ctx)
    root = resources.workspace(project_id)
    async with workspace_lock(
        resources.redis, project_id, wait_seconds=resources.settings.workspace_write_wait_seconds
    ):
        removed_pipelines = await resources.pipelines.delete_for_project(project_id)
        run_ids = await resources.runs.ids_for_project(project_id)
        await resources.events.delete_for_runs(run_ids)
        await resources.runs.delete_for_project(project_id)
        await resources.results.delete_for_project(project_id)
        await resources.experiments.delete_for_project(project_id)
        await resources.sweeps.delete_for_project(project_id)
        await resources.projects.delete(project_id)
        await asyncio.to_thread(shutil.rmtree, root, True)
    return ok(removed_pipelines=removed_pipelines)
