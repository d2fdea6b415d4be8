"""Creating a project's workspace (empty or cloned) and deleting it."""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

from app.domain.errors import DomainError
from app.domain.pipelines import PipelineSource
from app.jobs_protocol import JobPayload, ok
from workers import dvcops
from workers.context import resources_of
from workers.jobs.common import answers_domain_errors, report_from
from workers.locks import workspace_lock


def pipeline_name_for(path: str) -> str:
    """A name for a dvc.yaml found in a repository: its folder, with '/' as '-' ('root' at the top)."""
    folder = path.rpartition("/")[0]
    return folder.replace("/", "-") if folder else "root"


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
        await resources.projects.mark_ready(project_id)
    return ok(pipelines=[path for path, _, _ in discovered])


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
        await resources.projects.delete(project_id)
        await asyncio.to_thread(shutil.rmtree, root, True)
    return ok(removed_pipelines=removed_pipelines)
