"""Replacing a pipeline's whole dvc.yaml text (and optionally a params file), checked by DVC first.

A templated dvc.yaml (vars, foreach, matrix, ``${...}``) cannot be edited stage by stage without
expanding it, so users replace its text. DVC's YAML parser and dvc.yaml schema check the text before
anything is written; what needs the workspace (interpolation from values files, the graph with the
other pipelines, params keys) is checked by loading the written files, under the workspace lock, and
the caller restores its snapshot when that finds issues.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from app.domain.errors import InvalidInput, Issue
from workers.dvcops import dvc_internals
from workers.dvcops.atomic import write_atomically
from workers.dvcops.paths import LOCK_FILE, PIPELINE_FILE, outside_problem

# Files DVC builds its index from, which a params file must not be used to write.
RESERVED_NAMES = frozenset({PIPELINE_FILE, LOCK_FILE, ".dvcignore", ".gitignore"})


def check_pipeline_text(pipeline_path: str, text: str) -> list[Issue]:
    """What DVC's parser and its dvc.yaml schema refuse in ``text``, without touching the workspace."""
    from dvc.exceptions import DvcException

    try:
        data, refused = dvc_internals.parse_pipeline_text(text, pipeline_path)
    except DvcException as exc:
        cause = exc.__cause__ or exc
        return [Issue(path="dvcYaml", message=f"not a YAML file DVC can read: {cause}")]
    if refused:
        return [
            Issue(path="dvcYaml", message=f"DVC rejects {field or 'the file'}: {message}") for field, message in refused
        ]
    if not isinstance(data, dict) or not data.get("stages"):
        return [Issue(path="dvcYaml", message="a pipeline needs at least one stage")]
    return []


def params_path_problem(root: Path, path: str) -> str | None:
    """Why ``path`` may not be written as a params file, or None."""
    problem = outside_problem(root, ".", path)
    if problem:
        return problem
    name = posixpath.basename(posixpath.normpath(path))
    if name in RESERVED_NAMES or name.endswith(".dvc"):
        return f"'{path}' is one of DVC's own files, not a params file"
    if (root / path).is_dir():
        return f"'{path}' is a folder"
    return None


def write_texts(root: Path, files: dict[str, str]) -> None:
    """Write each file (relative path -> text) atomically, creating folders as needed."""
    for relative, text in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, text)


def require_text_accepted(pipeline_path: str, text: str) -> None:
    issues = check_pipeline_text(pipeline_path, text)
    if issues:
        raise InvalidInput(issues, f"DVC does not accept the new {pipeline_path}; nothing was changed")
