"""pipeline_status: for each stage of a pipeline, up to date or not, and why."""

from __future__ import annotations

from pathlib import Path

from app.domain.pipelines import StageStatus
from workers.dvcops.changes import stage_changes
from workers.dvcops.repo import existing_pipeline_file, stages_of
from workers.dvcops.stage_locks import reading_stages
from workers.dvcops.visit import repro_order
from workers.dvcops.warm import WarmRepos, locked_repo


def pipeline_status(root: Path, pipeline_path: str, repos: WarmRepos | None = None) -> list[StageStatus]:
    """Every stage of ``pipeline_path`` in the order `dvc repro` would visit them, with its changes.

    This is what `dvc status` computes (repo.status runs Stage.status() on each stage), called per
    stage so the answer is keyed by stage object rather than by DVC's cwd-relative stage address.
    A frozen stage reports only output and command changes, as in `dvc status`. With ``repos``, the
    workspace's Repo and index are reused while its pipeline files are unchanged.
    """
    file = existing_pipeline_file(root, pipeline_path)
    with locked_repo(root, repos) as opened:
        repo = opened.repo
        graph = repo.index.graph
        own = stages_of(graph, file)
        owned = set(own)
        # The walk also visits upstream stages of other pipelines; they are not reported.
        stages = [stage for stage in repro_order(graph, own) if stage in owned]
        statuses: list[StageStatus] = []
        with reading_stages(repo, stages):
            for stage in stages:
                changes = stage_changes(Path(repo.root_dir), stage, opened.locked)
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
