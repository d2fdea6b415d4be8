"""Opening a workspace with DVC, and naming its stages independently of the process's cwd."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.domain.errors import NotFound, WorkspaceError
from workers.dvcops import dvc_internals
from workers.dvcops.paths import pipeline_file, relative_to_root
from workers.dvcops.rwlock_file import repair_if_broken


@contextmanager
def open_repo(root: Path) -> Iterator[Any]:
    """DVC's Repo for the workspace, closed on exit."""
    with open_dvc_repo(root) as repo:
        yield repo


def open_dvc_repo(root: Path) -> Any:
    """DVC's Repo for the workspace; the caller closes it.

    Every DVC Repo a worker uses is opened here, so this is where a rwlock file that a killed DVC process left
    unreadable is repaired, before anything reads it (rwlock_file.py).
    """
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        repo = Repo(str(root))
    except NotDvcRepoError as exc:
        raise WorkspaceError(f"{root} is not a DVC workspace: {exc}") from exc
    try:
        repair_if_broken(repo, project=root.name)
    except BaseException:
        repo.close()
        raise
    return repo


def existing_pipeline_file(root: Path, pipeline_path: str) -> Path:
    path = pipeline_file(root, pipeline_path)
    if not path.is_file():
        raise NotFound("pipeline", pipeline_path)
    return path


def is_pipeline_stage(stage: Any) -> bool:
    """A named stage of a dvc.yaml, as opposed to a `.dvc` file made by `dvc add`/`dvc import`."""
    return dvc_internals.is_pipeline_stage(stage)


def stage_file(root: Path, stage: Any) -> str:
    """The dvc.yaml (or .dvc file) that defines ``stage``, relative to the root.

    DVC's own ``stage.addressing``/``relpath`` are relative to the process's cwd, which in a worker
    is not the workspace, so names are built from the absolute ``stage.path`` instead.
    """
    return relative_to_root(root, stage.path)


def in_file(stage: Any, file: Path) -> bool:
    stage_path: str = stage.path
    return os.path.abspath(stage_path) == os.path.abspath(file)


def stage_label(root: Path, stage: Any, pipeline_path: str) -> str:
    """The bare name for a stage of ``pipeline_path``; ``other/dvc.yaml:name`` for a stage elsewhere."""
    file = stage_file(root, stage)
    name = getattr(stage, "name", None)
    if not name:
        return file
    return name if file == os.path.normpath(pipeline_path) else f"{file}:{name}"


def stages_of(graph: Any, file: Path) -> list[Any]:
    return [stage for stage in graph if is_pipeline_stage(stage) and in_file(stage, file)]
