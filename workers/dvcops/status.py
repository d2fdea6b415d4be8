"""pipeline_status: for each stage of a pipeline, up to date or not, and why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.domain.pipelines import ChangeKind, StageChange, StageStatus
from workers.dvcops import dvc_internals
from workers.dvcops.changes import stage_changes
from workers.dvcops.repo import existing_pipeline_file, is_pipeline_stage, stage_file, stages_of
from workers.dvcops.stage_locks import reading_stages
from workers.dvcops.visit import repro_order
from workers.dvcops.warm import WarmRepos, locked_repo


def pipeline_status(root: Path, pipeline_path: str, repos: WarmRepos | None = None) -> list[StageStatus]:
    """Every stage of ``pipeline_path`` in the order `dvc repro` would visit them, with its changes.

    This is what `dvc status --with-deps` computes (repo.status runs Stage.status() on each stage),
    called per stage so the answer is keyed by stage object rather than by DVC's cwd-relative stage
    address. A stage whose own inputs are unchanged but which depends on an out-of-date stage of
    another pipeline (directly, or through other pipelines' stages) is not up to date: it gets an
    UPSTREAM change naming that stage, as `dvc status --with-deps` lists it. A frozen stage reports
    only output and command changes, as in `dvc status`, and nothing upstream of it (a run does not
    visit it). With ``repos``, the workspace's Repo and index are reused while its pipeline files are
    unchanged.
    """

    file = existing_pipeline_file(root, pipeline_path)
    with locked_repo(root, repos) as opened:
        repo = opened.repo
        graph = repo.index.graph
        own = stages_of(graph, file)
        owned = set(own)
        # What a run visits: frozen stages cut off from their dependencies.
        active = dvc_internals.active_graph(graph)
        visited = repro_order(active, own)
        upstream = [s for s in visited if s not in owned and is_pipeline_stage(s) and not s.frozen]
        stages = [stage for stage in visited if stage in owned]
        real_root = Path(repo.root_dir)
        with reading_stages(repo, [*upstream, *stages]):
            stale = {s for s in upstream if stage_changes(real_root, s, opened.locked)}
            causes = _UpstreamCauses(active, owned, stale)
            statuses: list[StageStatus] = []
            for stage in stages:
                changes = stage_changes(real_root, stage, opened.locked)
                changes += [
                    StageChange(kind=ChangeKind.UPSTREAM, path=stage_file(real_root, cause), stage=cause.name)
                    for cause in causes.of(stage)
                ]
                statuses.append(
                    StageStatus(
                        name=stage.name,
                        # A never-run stage is out of date even when DVC has nothing else to say about it.
                        up_to_date=not changes,
                        frozen=bool(stage.frozen),
                        changes=changes,
                    )
                )
        return statuses


class _UpstreamCauses:
    """The out-of-date stages of other pipelines that a stage depends on without passing through its own pipeline.

    Through its own pipeline's stages a cause is not repeated: the stage in between reports it.
    """

    def __init__(self, graph: Any, owned: set[Any], stale: set[Any]) -> None:
        self._graph = graph
        self._owned = owned
        self._stale = stale
        self._memo: dict[Any, list[Any]] = {}

    def of(self, stage: Any) -> list[Any]:
        if not self._stale:
            return []
        found: list[Any] = []
        # DVC's edges point from a consumer to the producers of its dependencies.
        for producer in self._graph.successors(stage):
            if producer not in self._owned:
                found.extend(self._external(producer))
        return sorted(dict.fromkeys(found), key=lambda s: (str(s.path), s.name))

    def _external(self, stage: Any) -> list[Any]:
        if stage not in self._memo:
            found = [stage] if stage in self._stale else []
            for producer in self._graph.successors(stage):
                if producer not in self._owned:
                    found.extend(self._external(producer))
            self._memo[stage] = list(dict.fromkeys(found))
        return self._memo[stage]
