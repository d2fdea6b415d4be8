"""Reading pipelines (dvc.yaml files) from a workspace as StageSpecs."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from app.domain.errors import InvalidInput, Issue
from app.domain.pipelines import StageSpec
from workers.dvcops import dvc_internals
from workers.dvcops.codec import from_dvc_stage
from workers.dvcops.paths import FORBIDDEN_DIRS, PIPELINE_FILE, relative_to_root
from workers.dvcops.repo import existing_pipeline_file, open_repo

logger = logging.getLogger(__name__)


def discover_pipelines(root: Path) -> list[tuple[str, list[StageSpec]]]:
    """Every dvc.yaml under ``root`` (outside .git and .dvc) with its stages, sorted by path.

    foreach/matrix stages are expanded as DVC expands them and reported under DVC's generated
    names (``train@0``, ``train@us``). A dvc.yaml that DVC cannot load is skipped and logged, so one
    broken file in a cloned repository does not hide the others.
    """
    found: list[tuple[str, list[StageSpec]]] = []
    with open_repo(root) as repo:
        for file in pipeline_files(root):
            pipeline_path = relative_to_root(root, str(file))
            try:
                found.append((pipeline_path, load_specs(repo, file, pipeline_path)))
            except InvalidInput as exc:
                logger.warning("skipping %s: %s", pipeline_path, exc.message)
    return found


def read_pipeline(root: Path, pipeline_path: str) -> list[StageSpec]:
    """The stages of one dvc.yaml, in file order; InvalidInput when DVC cannot load it."""
    file = existing_pipeline_file(root, pipeline_path)
    with open_repo(root) as repo:
        return load_specs(repo, file, pipeline_path)


def pipeline_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in FORBIDDEN_DIRS)
        if PIPELINE_FILE in names:
            files.append(Path(folder) / PIPELINE_FILE)
    return sorted(files)


def load_specs(repo: Any, file: Path, pipeline_path: str) -> list[StageSpec]:
    from dvc.exceptions import DvcException

    try:
        resolver = dvc_internals.project_file(repo, str(file)).resolver
        return [from_dvc_stage(name, resolver.resolve_one(name)[name], pipeline_path) for name in resolver.get_keys()]
    except DvcException as exc:
        raise InvalidInput([Issue(path="pipeline_path", message=f"DVC cannot load {pipeline_path}: {exc}")]) from exc
