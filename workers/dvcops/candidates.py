"""Proposed stages loaded by DVC's own loader, from memory: the dvc.yaml on disk is never touched."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.domain.errors import Issue
from app.domain.pipelines import StageSpec
from workers.dvcops import dvc_internals
from workers.dvcops.codec import from_dvc_stage, to_dvc_stage
from workers.dvcops.locate import DEP_FIELDS, OUT_FIELDS, locate
from workers.dvcops.paths import relative_to_root


@dataclass(frozen=True, slots=True)
class Candidate:
    index: int
    """Position in the request's ``stages``."""
    spec: StageSpec
    stage: Any
    """DVC's PipelineStage built from the spec."""


def load_candidates(
    repo: Any, file: Path, pipeline_path: str, specs: dict[int, StageSpec]
) -> tuple[list[Candidate], list[Issue]]:
    """DVC stages for ``specs`` (request index -> spec), as DVC would load them from ``file``.

    A ProjectFile whose contents are the proposed data stands in for the file: DVC's StageLoader and
    DataResolver then interpolate, resolve paths and build deps/outs exactly as for a real dvc.yaml.
    """
    from dvc.exceptions import DvcException

    contents = {"stages": {spec.name: to_dvc_stage(spec, pipeline_path) for spec in specs.values()}}
    dvcfile = dvc_internals.project_file_holding(repo, str(file), contents)

    loaded: list[Candidate] = []
    issues: list[Issue] = []
    for index, spec in specs.items():
        try:
            stage = dvcfile.stages[spec.name]
        except DvcException as exc:
            issues.append(Issue(path=f"stages[{index}]", message=f"DVC cannot load this stage: {exc}", stage=spec.name))
            continue
        problem = _own_paths_issue(repo.root_dir, Candidate(index, spec, stage))
        if problem:
            issues.append(problem)
        else:
            loaded.append(Candidate(index, spec, stage))
    return loaded, issues


def load_file_candidates(repo: Any, file: Path, pipeline_path: str) -> tuple[list[Candidate], list[Issue]]:
    """The stages of the dvc.yaml on disk, loaded by DVC as `dvc stage list` loads them (schema, interpolation,
    foreach/matrix expansion, paths), each with the StageSpec it reads as; ``index`` is the stage's position
    in DVC's order of the file's (generated) stages.
    """
    from dvc.exceptions import DvcException

    try:
        loader = dvc_internals.project_file(repo, str(file)).stages
        names = list(loader)
    except DvcException as exc:
        return [], [Issue(path="stages", message=f"DVC cannot load {pipeline_path}: {exc}")]
    loaded: list[Candidate] = []
    issues: list[Issue] = []
    for index, name in enumerate(names):
        try:
            stage = loader[name]
            spec = from_dvc_stage(name, loader.resolver.resolve_one(name)[name], pipeline_path)
        except DvcException as exc:
            issues.append(Issue(path=f"stages[{index}]", message=f"DVC cannot load this stage: {exc}", stage=name))
            continue
        candidate = Candidate(index, spec, stage)
        problem = _own_paths_issue(repo.root_dir, candidate)
        if problem:
            issues.append(problem)
        else:
            loaded.append(candidate)
    return loaded, issues


def _own_paths_issue(root_dir: str, candidate: Candidate) -> Issue | None:
    """DVC's per-stage checks from `dvc stage add` (dvc/stage/__init__.py create_stage)."""
    from dvc.exceptions import ArgumentDuplicationError, CircularDependencyError

    stage, spec, index = candidate.stage, candidate.spec, candidate.index
    try:
        dvc_internals.check_stage_arguments(stage)
    except CircularDependencyError:
        both = sorted({d.fs_path for d in stage.deps} & {o.fs_path for o in stage.outs})
        path = locate(root_dir, index, spec, both[0], OUT_FIELDS)
        shown = relative_to_root(Path(root_dir), both[0])
        return Issue(path=path, message=f"'{shown}' is both a dependency and an output of this stage", stage=spec.name)
    except ArgumentDuplicationError:
        paths = [os.path.abspath(item.fs_path) for item in (*stage.deps, *stage.outs)]
        repeated = next(p for i, p in enumerate(paths) if p in paths[:i])
        path = locate(root_dir, index, spec, repeated, (*DEP_FIELDS, *OUT_FIELDS), last=True)
        shown = relative_to_root(Path(root_dir), repeated)
        return Issue(path=path, message=f"'{shown}' is listed more than once in this stage", stage=spec.name)
    return None
