"""Git history of a project's workspace: commit a run's results, list revisions and history, tag, dirty files.

Every git command runs in a worker (workers.gitops), as the service runs git: nothing from the workspace executes.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.errors import InvalidInput, Issue
from app.domain.history import ChangedFile, Commit, CommitOutcome, CommitPage, Ref, Revisions, WorkingTree
from app.domain.users import Role
from app.jobs import JobDispatcher
from app.services.access import Access
from app.services.pipelines import PipelineService
from app.services.results import check_revision
from app.services.runs import RunService

MAX_MESSAGE_LENGTH = 10_000


def _page(payload: dict[str, object]) -> CommitPage:
    commits = payload["commits"]
    assert isinstance(commits, list)
    return CommitPage(commits=[Commit.from_dict(c) for c in commits], has_next_page=bool(payload["has_next_page"]))


def _check_message(message: str | None) -> None:
    if message is not None and len(message) > MAX_MESSAGE_LENGTH:
        raise InvalidInput([Issue(path="message", message=f"at most {MAX_MESSAGE_LENGTH} characters")])


@dataclass(frozen=True, slots=True)
class HistoryService:
    access: Access
    runs: RunService
    pipelines: PipelineService
    jobs: JobDispatcher

    async def commit_run(self, *, caller: str, run_id: str, message: str | None) -> CommitOutcome:
        _check_message(message)
        run = await self.runs.get(caller=caller, run_id=run_id, needs=Role.EDITOR)
        payload = await self.jobs.call("commit_run", run.id, message)
        return CommitOutcome(sha=payload["sha"], note=payload["note"])

    async def revisions(self, *, caller: str, project_id: str, skip: int, count: int) -> Revisions:
        project = await self.access.project(caller=caller, project_id=project_id, needs=Role.VIEWER)
        payload = await self.jobs.call("project_revisions", project.id, skip, count)
        return Revisions(
            current_branch=payload["current_branch"],
            branches=[Ref.from_dict(b) for b in payload["branches"]],
            tags=[Ref.from_dict(t) for t in payload["tags"]],
            commits=_page(payload),
        )

    async def pipeline_history(self, *, caller: str, pipeline_id: str, skip: int, count: int) -> CommitPage:
        pipeline = await self.pipelines.get(caller=caller, pipeline_id=pipeline_id)
        return _page(await self.jobs.call("pipeline_history", pipeline.id, skip, count))

    async def tag(self, *, caller: str, project_id: str, revision: str, name: str, message: str | None) -> Ref:
        check_revision(revision, path="rev")
        _check_message(message)
        project = await self.access.project(caller=caller, project_id=project_id, needs=Role.EDITOR)
        payload = await self.jobs.call("tag_revision", project.id, revision, name, message or "", caller)
        return Ref.from_dict(payload)

    async def working_tree(self, *, caller: str, project_id: str) -> WorkingTree:
        project = await self.access.project(caller=caller, project_id=project_id, needs=Role.VIEWER)
        payload = await self.jobs.call("working_tree", project.id)
        return WorkingTree(
            head=payload["head"], files=[ChangedFile(path=f["path"], change=f["change"]) for f in payload["files"]]
        )
