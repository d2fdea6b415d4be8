"""Writing and removing pipeline files (dvc.yaml and the lock entries DVC keeps beside it)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from app.domain.pipelines import StageSpec
from workers.dvcops import dvc_internals
from workers.dvcops.atomic import write_atomically
from workers.dvcops.codec import to_dvc_stages
from workers.dvcops.paths import API_PIPELINES_DIR, lock_file_for, pipeline_file
from workers.dvcops.repo import existing_pipeline_file, open_repo

logger = logging.getLogger(__name__)


def write_pipeline(root: Path, pipeline_path: str, stages: list[StageSpec]) -> None:
    """Make ``stages`` the whole stage set of ``pipeline_path`` (created with its folder if needed).

    Other top-level keys of an existing dvc.yaml (vars, plots, params, ...) are kept. Lock entries of
    stages that are no longer in the set are removed from the dvc.lock beside it.
    """
    file = pipeline_file(root, pipeline_path)
    file.parent.mkdir(parents=True, exist_ok=True)
    data = load_for_update(file)
    data["stages"] = to_dvc_stages(stages, pipeline_path)
    write_atomically(file, dvc_internals.dump_yaml(data))
    _prune_lock(lock_file_for(file), {spec.name for spec in stages})


def remove_pipeline(root: Path, pipeline_path: str) -> list[str]:
    """Delete the dvc.yaml and its dvc.lock; answer the names of the stages it defined.

    As `dvc remove` without ``--outs``: the stages' outputs stay on disk (and in the DVC cache) and
    are only dropped from .gitignore. The folder goes too when it is under ``pipelines/`` and empty.
    """
    file = existing_pipeline_file(root, pipeline_path)
    with open_repo(root) as repo:
        names, stages = _stages_for_removal(repo, file)
        for stage in stages:
            stage.unprotect_outs()
            stage.ignore_remove_outs()
    file.unlink()
    lock_file_for(file).unlink(missing_ok=True)
    folder = file.parent
    under_api_dir = folder.parent.resolve() == (root / API_PIPELINES_DIR).resolve()
    if under_api_dir and not any(folder.iterdir()):
        folder.rmdir()
    return names


def _stages_for_removal(repo: Any, file: Path) -> tuple[list[str], list[Any]]:
    from dvc.exceptions import DvcException

    dvcfile = dvc_internals.project_file(repo, str(file))
    try:
        stages = [dvcfile.stages[name] for name in dvcfile.stages]
        return [stage.name for stage in stages], stages
    except DvcException as exc:
        # A file DVC cannot load is still removed; only the .gitignore clean-up is skipped.
        logger.warning("removing %s, which DVC cannot load: %s", file, exc)
        raw = load_for_update(file).get("stages") or {}
        return [str(name) for name in raw], []


def load_for_update(path: Path) -> Any:
    """The YAML in ``path`` in round-trip form (comments and order survive), or {} if absent/unreadable."""
    if not path.is_file():
        return {}
    try:
        data = dvc_internals.parse_yaml_for_update(path.read_text(encoding="utf-8"), str(path))
    except dvc_internals.yaml_parse_error():
        logger.warning("%s is not valid YAML; it is replaced as a whole", path)
        return {}
    return data if isinstance(data, dict) else {}


def prune_lock_entries(root: Path, pipeline_path: str, keep: set[str]) -> None:
    """Drop the dvc.lock entries of stages of ``pipeline_path`` not in ``keep`` (as write_pipeline does)."""
    _prune_lock(lock_file_for(pipeline_file(root, pipeline_path)), keep)


def _prune_lock(lock: Path, keep: set[str]) -> None:
    data = load_for_update(lock)
    entries = data.get("stages") or {}
    stale = [name for name in entries if name not in keep]
    if not stale:
        return
    for name in stale:
        del entries[name]
    if not entries and not data.get("datasets"):
        # What DVC does when the last entry goes (dvcfile.Lockfile.remove_stage).
        lock.unlink()
        return
    write_atomically(lock, dvc_internals.dump_yaml(data))
