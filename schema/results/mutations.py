"""Mutations on a workspace's git history: commit a run's results, tag a revision."""

from __future__ import annotations

import strawberry

from schema.context import Info
from schema.results.history_types import (
    CommitRunResult,
    GitRef,
    RevisionTagged,
    RunCommitted,
    TagRevisionResult,
)


@strawberry.type
class HistoryMutations:
    @strawberry.mutation(
        description="Commit what a finished run changed that git tracks (dvc.lock, .gitignore files, metrics and "
        "params files; never DVC-cached outputs), authored as the run's user. Nothing changed: nothing committed."
    )
    async def commit_run(self, info: Info, run_id: strawberry.ID, message: str | None = None) -> CommitRunResult:
        await info.context.spend_work()
        outcome = await info.context.services.history.commit_run(
            caller=info.context.caller, run_id=run_id, message=message
        )
        return RunCommitted(sha=outcome.sha, note=outcome.note)

    @strawberry.mutation(description="An annotated git tag on a revision, for releases (`git tag -a name -m message`).")
    async def tag_revision(
        self, info: Info, project_id: strawberry.ID, rev: str, name: str, message: str | None = None
    ) -> TagRevisionResult:
        await info.context.spend_work()
        ref = await info.context.services.history.tag(
            caller=info.context.caller, project_id=project_id, revision=rev, name=name, message=message
        )
        return RevisionTagged(tag=GitRef.from_domain(ref))
