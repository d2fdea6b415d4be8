"""check_pipeline: every problem of a proposed stage set, found without writing anything."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from app.domain.errors import InvalidInput, Issue
from app.domain.pipelines import StageSpec
from workers.dvcops.candidates import load_candidates, load_file_candidates
from workers.dvcops.codec import to_dvc_stage
from workers.dvcops.graph_checks import graph_issues
from workers.dvcops.paths import pipeline_file, relative_to_root
from workers.dvcops.reading import load_specs, pipeline_files
from workers.dvcops.repo import existing_pipeline_file, open_repo
from workers.dvcops.schema_checks import schema_issues
from workers.dvcops.spec_checks import spec_issues, stage_issues

logger = logging.getLogger(__name__)


def check_pipeline(root: Path, pipeline_path: str, stages: list[StageSpec]) -> list[Issue]:
    """Issues of ``stages`` as the new content of ``pipeline_path``; empty when DVC would accept it.

    Each issue names the request field (``stages[2].outs[0]``) and, when one stage is at fault, the
    stage, so the caller can drop the failing stages and keep the rest. Stages with a problem of
    their own are left out of the later, whole-workspace checks (DVC loading, graph) so that one bad
    stage does not hide the others' problems.
    """
    file = pipeline_file(root, pipeline_path)
    issues = spec_issues(root, stages)
    for index, spec in enumerate(stages):
        if isinstance(spec.name, str) and spec.name:
            issues.extend(schema_issues(index, spec.name, to_dvc_stage(spec, pipeline_path)))
    faulty = {issue.path.split(".")[0] for issue in issues}
    sound = {i: spec for i, spec in enumerate(stages) if f"stages[{i}]" not in faulty}
    if not sound:
        return issues
    with open_repo(root) as repo:
        candidates, load_issues = load_candidates(repo, file, pipeline_path, sound)
        issues.extend(load_issues)
        issues.extend(graph_issues(repo, file, candidates))
    return issues


def check_pipeline_file(root: Path, pipeline_path: str) -> list[Issue]:
    """Issues of the dvc.yaml as it is on disk; empty when DVC accepts it and its paths stay in the workspace.

    This is DVC's own loading (what `dvc stage list` and `dvc repro --dry` accept: the schema, ``vars``,
    ``foreach``/``matrix``, interpolation), DVC's graph checks across every pipeline of the workspace,
    and the service's rules for what a stage may touch (paths inside the workspace, params files and
    keys that exist). The naming rule for stages typed into the API does not apply: names here are
    the file's own, or those DVC generated (``train@0``, ``eval@0.1-1``). Issues are located by the
    stage's position in DVC's order of the file's stages.
    """
    file = existing_pipeline_file(root, pipeline_path)
    with open_repo(root) as repo:
        return _file_issues(repo, root, file, pipeline_path)


def discover_checked_pipelines(root: Path) -> list[tuple[str, list[StageSpec], list[Issue]]]:
    """discover_pipelines and check_pipeline_file of each, with one Repo (opening one is most of a small check)."""
    found: list[tuple[str, list[StageSpec], list[Issue]]] = []
    with open_repo(root) as repo:
        for file in pipeline_files(root):
            pipeline_path = relative_to_root(root, str(file))
            try:
                stages = load_specs(repo, file, pipeline_path)
            except InvalidInput as exc:
                logger.warning("skipping %s: %s", pipeline_path, exc.message)
                continue
            found.append((pipeline_path, stages, _file_issues(repo, root, file, pipeline_path)))
    return found


def _file_issues(repo: Any, root: Path, file: Path, pipeline_path: str) -> list[Issue]:
    candidates, issues = load_file_candidates(repo, file, pipeline_path)
    sound = []
    for candidate in candidates:
        own = stage_issues(root, candidate.index, candidate.spec)
        issues.extend(own)
        if not own:
            sound.append(candidate)
    issues.extend(graph_issues(repo, file, sound))
    return sorted(issues, key=lambda issue: _position(issue.path))


def _position(path: str) -> tuple[int, str]:
    head = path.split(".")[0]
    index = head.removeprefix("stages[").removesuffix("]")
    return (int(index), path) if index.isdigit() else (-1, path)
