"""Workspace-relative paths: pipeline files, the wdir conversion, and whether a path stays inside."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path, PurePosixPath

from app.domain.errors import InvalidInput, Issue

PIPELINE_FILE = "dvc.yaml"
LOCK_FILE = "dvc.lock"
API_PIPELINES_DIR = "pipelines"
FORBIDDEN_DIRS = frozenset({".git", ".dvc"})


def pipeline_file(root: Path, pipeline_path: str) -> Path:
    """The absolute dvc.yaml for ``pipeline_path``; InvalidInput when it is not a dvc.yaml inside root."""
    problem = _pipeline_path_problem(pipeline_path)
    if problem:
        raise InvalidInput([Issue(path="pipeline_path", message=problem)])
    return root / pipeline_path


def lock_file_for(pipeline_file_path: Path) -> Path:
    # DVC keeps the lock entries of a dvc.yaml in the dvc.lock beside it (dvcfile.ProjectFile._lockfile).
    return pipeline_file_path.with_name(LOCK_FILE)


def pipeline_folder(pipeline_path: str) -> str:
    return posixpath.dirname(posixpath.normpath(pipeline_path)) or "."


def to_dvc_wdir(project_wdir: str, pipeline_path: str) -> str | None:
    """A StageSpec wdir (relative to the project root) as DVC's wdir (relative to the dvc.yaml folder).

    None when it is the file's own folder, which is DVC's default and so is left out of dvc.yaml.
    """
    relative = posixpath.relpath(posixpath.normpath(project_wdir or "."), pipeline_folder(pipeline_path))
    return None if relative == "." else relative


def to_project_wdir(dvc_wdir: str | None, pipeline_path: str) -> str:
    """DVC's wdir (relative to the dvc.yaml folder) as a StageSpec wdir (relative to the project root)."""
    return posixpath.normpath(posixpath.join(pipeline_folder(pipeline_path), dvc_wdir or "."))


def outside_problem(root: Path, base: str, path: str) -> str | None:
    """Why ``path`` (relative to ``base``, itself relative to root) may not be used, or None.

    Checks the text first (absolute, ``..`` leaving the workspace, .git/.dvc), then the disk: a
    symlink anywhere along the existing part of the path must not lead outside the workspace.
    """
    if not path or not path.strip():
        return "path is empty"
    if PurePosixPath(path).is_absolute() or os.path.isabs(path):
        return f"'{path}' is an absolute path; use a path relative to the stage's working directory"
    joined = posixpath.normpath(posixpath.join(base or ".", path))
    if joined == ".." or joined.startswith("../"):
        return f"'{path}' leaves the workspace"
    parts = PurePosixPath(joined).parts
    if FORBIDDEN_DIRS & set(parts):
        return f"'{path}' points into .git or .dvc, which belong to git and DVC"
    real_root = root.resolve()
    # resolve() follows every symlink on the existing part of the path; a link out of the workspace
    # would let a stage read or overwrite files the workspace does not own.
    if not (root / joined).resolve().is_relative_to(real_root):
        return f"'{path}' goes through a symlink that points outside the workspace"
    return None


def relative_to_root(root: Path, fs_path: str) -> str:
    """DVC's absolute fs_path as a path relative to the workspace root, with forward slashes."""
    return PurePosixPath(Path(os.path.relpath(fs_path, root)).as_posix()).as_posix()


def _pipeline_path_problem(pipeline_path: str) -> str | None:
    if not pipeline_path:
        return "pipeline path is empty"
    if posixpath.basename(pipeline_path) != PIPELINE_FILE:
        return f"'{pipeline_path}' is not a {PIPELINE_FILE} file"
    if PurePosixPath(pipeline_path).is_absolute():
        return f"'{pipeline_path}' must be relative to the workspace root"
    normalized = posixpath.normpath(pipeline_path)
    if normalized.startswith("../") or FORBIDDEN_DIRS & set(PurePosixPath(normalized).parts):
        return f"'{pipeline_path}' is not inside the workspace"
    return None
