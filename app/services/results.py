"""Results: each run's snapshot, comparisons across runs, and diffs between git revisions (read by a worker)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.domain.errors import InvalidInput, Issue, NotFound
from app.domain.results import (
    Comparison,
    DiffEntry,
    FileError,
    MetricPoint,
    PlotImage,
    ResultKind,
    ResultsSnapshot,
    RevisionDiff,
    RunResults,
    compare,
)
from app.domain.users import Role
from app.jobs import JobDispatcher
from app.repositories.results import ResultsRepository
from app.services.access import Access
from app.services.pipelines import PipelineService
from app.services.runs import RunService

MAX_COMPARED_RUNS = 100
MAX_REVISION_LENGTH = 200
# A sha, branch or tag name as git allows them, and never an option (no leading dash).
_REVISION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./@{}~^+-]*")


def check_revision(revision: str, *, path: str) -> str:
    if len(revision) > MAX_REVISION_LENGTH or not _REVISION.fullmatch(revision) or ".." in revision:
        raise InvalidInput(
            [Issue(path=path, message=f"{revision[:50]!r} is not a revision (sha, branch, tag or workspace)")]
        )
    return revision


@dataclass(frozen=True, slots=True)
class ResultsService:
    access: Access
    runs: RunService
    pipelines: PipelineService
    results: ResultsRepository
    jobs: JobDispatcher

    async def of_run(self, *, caller: str, run_id: str) -> RunResults | None:
        """The run's snapshot; None while it has none (it has not ended, or ended before any stage ran)."""
        run = await self.runs.get(caller=caller, run_id=run_id)
        return await self.results.get(run.id)

    async def image(self, *, caller: str, run_id: str, index: int) -> PlotImage:
        run = await self.runs.get(caller=caller, run_id=run_id)
        image = await self.results.image(run.id, index)
        if image is None:
            raise NotFound("image", f"{run_id}/{index}")
        return image

    async def compare(self, *, caller: str, run_ids: list[str], baseline: str | None) -> Comparison:
        if not run_ids:
            raise InvalidInput([Issue(path="runIds", message="name at least one run")])
        if len(run_ids) > MAX_COMPARED_RUNS:
            raise InvalidInput([Issue(path="runIds", message=f"at most {MAX_COMPARED_RUNS} runs at once")])
        chosen = baseline or run_ids[0]
        if chosen not in run_ids:
            raise InvalidInput([Issue(path="baseline", message="the baseline must be one of the runs compared")])
        unique = list(dict.fromkeys(run_ids))
        allowed: dict[str, bool] = {}
        for run_id in unique:
            run = await self.runs.runs.get(run_id)  # NotFound for a missing one
            if run.project_id not in allowed:
                try:
                    await self.access.project(caller=caller, project_id=run.project_id, needs=Role.VIEWER)
                    allowed[run.project_id] = True
                except NotFound:
                    raise NotFound("run", run_id) from None
        found = await self.results.get_many(unique)
        snapshots: dict[str, ResultsSnapshot | None] = {r: found[r].snapshot if r in found else None for r in unique}
        return compare(snapshots, unique, chosen)

    async def metric_history(
        self, *, caller: str, pipeline_id: str, file: str, key: str, first: int
    ) -> list[MetricPoint]:
        pipeline = await self.pipelines.get(caller=caller, pipeline_id=pipeline_id)
        return await self.results.metric_history(pipeline_id=pipeline.id, file=file, key=key, first=first)

    async def of_workspace(self, *, caller: str, pipeline_id: str) -> ResultsSnapshot:
        """Metrics and params of the pipeline's workspace as it is now, read by a worker."""
        pipeline = await self.pipelines.get(caller=caller, pipeline_id=pipeline_id)
        payload = await self.jobs.call("workspace_results", pipeline.project_id)
        return ResultsSnapshot.from_dict(payload["snapshot"])

    async def diff(
        self, *, caller: str, project_id: str, kind: ResultKind, a: str, b: str, unchanged: bool
    ) -> RevisionDiff:
        check_revision(a, path="a")
        check_revision(b, path="b")
        project = await self.access.project(caller=caller, project_id=project_id, needs=Role.VIEWER)
        payload = await self.jobs.call("revision_diff", project.id, kind.value, a, b, unchanged)
        return RevisionDiff(
            a=payload["a"],
            b=payload["b"],
            entries=[DiffEntry.from_dict(e) for e in payload["entries"]],
            errors=[FileError.from_dict(e) for e in payload["errors"]],
        )
