"""pipeline_status: for each stage of a pipeline, up to date or not, and why."""

from __future__ import annotations

from pathlib import Path

from app.domain.pipelines import StageStatus
from workers.dvcops.changes import LockedStages, stage_changes
from workers.dvcops.repo import existing_pipeline_file, open_repo, stages_of


def pipeline_status(root: Path, pipeline_path: str) -> list[StageStatus]:
    """Every stage of ``pipeline_path`` in the order `dvc repro` would visit them, with its changes.

    This is what `dvc status` computes (repo.status runs Stage.status() on each stage), called per
    stage so the answer is keyed by stage object rather than by DVC's cwd-relative stage address.
    A frozen stage reports only output and command changes, as in `dvc status`.
    """
    from dvc.repo.reproduce import plan_repro

    file = existing_pipeline_file(root, pipeline_path)
    with open_repo(root) as repo, repo.lock:
        graph = repo.index.graph
        own = stages_of(graph, file)
        statuses: list[StageStatus] = []
        locked = LockedStages()
        for stage in plan_repro(graph, own):
            if stage not in own:
                continue  # an upstream stage of another pipeline
            changes = stage_changes(Path(repo.root_dir), stage, locked)
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
