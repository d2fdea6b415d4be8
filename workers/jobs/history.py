"""Git history of a workspace: committing a run's results, revisions, a pipeline's history, tags, dirty files."""

from __future__ import annotations

import asyncio
import posixpath
from pathlib import Path
from typing import Any

from app.domain.errors import Conflict, InvalidInput, Issue
from app.domain.results import ResultKind, ResultsSnapshot
from app.domain.runs import Run, RunState
from app.jobs_protocol import JobPayload, ok
from workers import gitops
from workers.context import WorkerResources, resources_of
from workers.jobs.common import answers_domain_errors
from workers.jobs.pipelines import lock_path_for, reading
from workers.locks import workspace_lock

# Files DVC writes that belong in git whatever their folder; metrics and params files come from the snapshot.
DVC_TRACKED_NAMES = frozenset({"dvc.lock", "dvc.yaml", ".gitignore"})
AUTHOR_EMAIL_DOMAIN = "users.dvc-pipelines.invalid"
MAX_MESSAGE_LENGTH = 10_000


def files_to_commit(root: Path, snapshot: ResultsSnapshot | None) -> list[str]:
    """What the workspace changed that git should track: dvc.lock and dvc.yaml files, the .gitignore files DVC
    writes, the metrics and params files DVC read. DVC-cached outputs are git-ignored, so git never lists them."""
    result_files: set[str] = set()
    if snapshot is not None:
        result_files |= {e.file for e in snapshot.metrics + snapshot.params}
        result_files |= {e.file for e in snapshot.errors if e.kind != ResultKind.PLOTS and e.file}
    wanted = []
    for changed in gitops.status(root, untracked=True):
        path = changed.path
        if path.startswith(".dvc/"):
            continue
        if posixpath.basename(path) in DVC_TRACKED_NAMES or path.endswith(".dvc") or path in result_files:
            wanted.append(path)
    return sorted(wanted)


def default_message(run: Run) -> str:
    return f"Results of run {run.id} of pipeline {run.pipeline_name}"


async def commit_results(resources: WorkerResources, run: Run, message: str | None) -> tuple[str | None, str | None]:
    """Commit what run ``run`` changed, as the user who triggered it; (sha, None) or (None, why nothing)."""
    root = resources.workspace(run.project_id)
    results = await resources.results.get(run.id)
    user = await resources.users.get_user(run.triggered_by)
    paths = await asyncio.to_thread(files_to_commit, root, results.snapshot if results else None)
    sha = await asyncio.to_thread(
        gitops.commit_paths,
        root,
        paths,
        message=message or default_message(run),
        author_name=user.name,
        author_email=f"{user.name}@{AUTHOR_EMAIL_DOMAIN}",
    )
    if sha is None:
        return None, "the run changed nothing that git tracks; nothing was committed"
    return sha, None


async def commit_after_run(resources: WorkerResources, run: Run, state: RunState) -> None:
    """Option ``commit``: a run that succeeded commits its results before its final state is recorded."""
    if not run.options.commit:
        return
    if state != RunState.SUCCEEDED:
        await resources.runs.set_fields(run.id, commit_note=f"the run ended {state.value}; nothing was committed")
        return
    try:
        sha, note = await commit_results(resources, run, None)
    except Exception as error:  # a failed commit is told on the run, never fails it
        sha, note = None, f"committing failed: {getattr(error, 'message', error)}"
    await resources.runs.set_fields(run.id, commit_sha=sha, commit_note=note)


@answers_domain_errors
async def commit_run(ctx: dict[str, Any], run_id: str, message: str | None) -> JobPayload:
    resources = resources_of(ctx)
    run = await resources.runs.get(run_id)
    if not run.state.finished:
        raise Conflict(f"the run is {run.state.value}; commit it once it has finished")
    if run.commit_sha is not None:
        raise Conflict(f"the run was already committed as {run.commit_sha}")
    if message is not None and len(message) > MAX_MESSAGE_LENGTH:
        raise InvalidInput([Issue(path="message", message=f"at most {MAX_MESSAGE_LENGTH} characters")])
    async with workspace_lock(
        resources.redis, run.project_id, wait_seconds=resources.settings.workspace_write_wait_seconds
    ):
        newest = await resources.runs.list_page(
            project_ids=[run.project_id], pipeline_id=None, state=None, first=5, after=None
        )
        later = [r for r in newest.items if r.id > run.id and r.started_at is not None]
        if later:
            raise Conflict(f"run {later[-1].id} changed the workspace since; commit that run instead")
        sha, note = await commit_results(resources, run, message)
        await resources.runs.set_fields(run.id, commit_sha=sha, commit_note=note)
    return ok(sha=sha, note=note)


@answers_domain_errors
async def project_revisions(ctx: dict[str, Any], project_id: str, skip: int, count: int) -> JobPayload:
    resources = resources_of(ctx)
    root = resources.workspace(project_id)
    async with reading(resources, project_id):
        branches = await asyncio.to_thread(gitops.branches, root)
        tags = await asyncio.to_thread(gitops.tags, root)
        commits = await asyncio.to_thread(gitops.log, root, skip=skip, count=count + 1)
        current = await asyncio.to_thread(gitops.current_branch, root)
    return ok(
        current_branch=current,
        branches=[b.to_dict() for b in branches],
        tags=[t.to_dict() for t in tags],
        commits=[c.to_dict() for c in commits[:count]],
        has_next_page=len(commits) > count,
    )


@answers_domain_errors
async def pipeline_history(ctx: dict[str, Any], pipeline_id: str, skip: int, count: int) -> JobPayload:
    resources = resources_of(ctx)
    pipeline = await resources.pipelines.get(pipeline_id)
    root = resources.workspace(pipeline.project_id)
    paths = [pipeline.path, lock_path_for(pipeline.path)]
    async with reading(resources, pipeline.project_id):
        commits = await asyncio.to_thread(gitops.log, root, skip=skip, count=count + 1, paths=paths)
    return ok(commits=[c.to_dict() for c in commits[:count]], has_next_page=len(commits) > count)


@answers_domain_errors
async def tag_revision(
    ctx: dict[str, Any], project_id: str, revision: str, name: str, message: str, user_id: str
) -> JobPayload:
    resources = resources_of(ctx)
    user = await resources.users.get_user(user_id)
    root = resources.workspace(project_id)
    async with workspace_lock(
        resources.redis, project_id, wait_seconds=resources.settings.workspace_write_wait_seconds
    ):
        tag = await asyncio.to_thread(
            gitops.tag,
            root,
            revision=revision,
            name=name,
            message=message,
            tagger_name=user.name,
            tagger_email=f"{user.name}@{AUTHOR_EMAIL_DOMAIN}",
        )
    return ok(name=tag.name, sha=tag.sha, message=tag.message)


@answers_domain_errors
async def working_tree(ctx: dict[str, Any], project_id: str) -> JobPayload:
    resources = resources_of(ctx)
    root = resources.workspace(project_id)
    async with reading(resources, project_id):
        head = await asyncio.to_thread(gitops.resolve, root, "HEAD")
        changed = await asyncio.to_thread(gitops.status, root, untracked=False)
    return ok(head=head, files=[{"path": c.path, "change": c.change} for c in changed])
