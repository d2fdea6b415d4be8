"""Checks of a proposed stage set that need no DVC: names, commands, paths, params and wdir."""

from __future__ import annotations

from pathlib import Path

from app.domain.errors import Issue
from app.domain.pipelines import StageSpec
from workers.dvcops import dvc_internals
from workers.dvcops.codec import split_param
from workers.dvcops.paths import outside_problem

PATH_FIELDS = ("deps", "outs", "metrics", "plots")


def spec_issues(root: Path, stages: list[StageSpec]) -> list[Issue]:
    """Every problem of every stage that can be seen without loading it into DVC."""
    issues: list[Issue] = []
    if not stages:
        issues.append(Issue(path="stages", message="a pipeline needs at least one stage"))
    issues.extend(_name_issues(stages))
    for index, spec in enumerate(stages):
        issues.extend(stage_issues(root, index, spec))
    return issues


def _name_issues(stages: list[StageSpec]) -> list[Issue]:
    issues: list[Issue] = []
    seen: set[str] = set()
    for index, spec in enumerate(stages):
        path = f"stages[{index}].name"
        name = spec.name
        if not isinstance(name, str):
            issues.append(Issue(path=path, message="stage name must be a string"))
        elif not name.strip():
            issues.append(Issue(path=path, message="stage name is empty"))
        elif not dvc_internals.is_valid_stage_name(name):
            issues.append(
                Issue(
                    path=path,
                    message=f"DVC does not accept the stage name {name!r}: use letters, digits, '_' and '-' only",
                    stage=name,
                )
            )
        elif name in seen:
            # The first stage of that name keeps it; the later ones are the duplicates.
            issues.append(Issue(path=path, message=f"stage name {name!r} is used more than once", stage=name))
        seen.add(name)
    return issues


def stage_issues(root: Path, index: int, spec: StageSpec) -> list[Issue]:
    """What one stage may not do whatever its name: an empty command, paths leaving the workspace, missing params."""
    stage = spec.name or None
    prefix = f"stages[{index}]"
    issues: list[Issue] = []
    if isinstance(spec.cmd, str) and not spec.cmd.strip():
        issues.append(Issue(path=f"{prefix}.cmd", message="command is empty", stage=stage))
    wdir_problem = _wdir_problem(root, spec.wdir)
    if wdir_problem:
        # Every other path is relative to wdir, so there is nothing sound left to check.
        return [*issues, Issue(path=f"{prefix}.wdir", message=wdir_problem, stage=stage)]
    for field in PATH_FIELDS:
        for position, path in enumerate(getattr(spec, field)):
            if not isinstance(path, str):
                continue  # not a path at all: DVC's schema check reports it
            problem = outside_problem(root, spec.wdir, path)
            if problem:
                issues.append(Issue(path=f"{prefix}.{field}[{position}]", message=problem, stage=stage))
    for position, entry in enumerate(spec.params):
        if not isinstance(entry, str):
            continue  # DVC's schema check reports it
        problem = _param_problem(root, spec.wdir, entry)
        if problem:
            issues.append(Issue(path=f"{prefix}.params[{position}]", message=problem, stage=stage))
    return issues


def _wdir_problem(root: Path, wdir: str) -> str | None:
    problem = outside_problem(root, ".", wdir or ".")
    if problem:
        return f"working directory {problem}"
    if not (root / wdir).is_dir():
        return f"working directory '{wdir}' does not exist"
    return None


def _param_problem(root: Path, wdir: str, entry: str) -> str | None:
    from dvc.exceptions import DvcException

    if not entry or not entry.strip():
        return "params entry is empty"
    file, key = split_param(entry)
    problem = outside_problem(root, wdir, file)
    if problem:
        return problem
    path = root / wdir / file
    if not path.is_file():
        return f"params file '{file}' does not exist in the stage's working directory"
    if not key:
        return None
    try:
        # DVC's reader, so the dotted-key semantics (and the file formats) are exactly DVC's.
        found = dvc_internals.read_params(str(path), [key])
    except DvcException as exc:
        return f"params file '{file}' cannot be read: {exc}"
    if key not in found:
        return f"key '{key}' is not in params file '{file}'"
    return None
