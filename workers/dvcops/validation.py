"""check_pipeline: every problem of a proposed stage set, found without writing anything."""

from __future__ import annotations

from pathlib import Path

from app.domain.errors import Issue
from app.domain.pipelines import StageSpec
from workers.dvcops.candidates import load_candidates
from workers.dvcops.codec import to_dvc_stage
from workers.dvcops.graph_checks import graph_issues
from workers.dvcops.paths import pipeline_file
from workers.dvcops.repo import open_repo
from workers.dvcops.schema_checks import schema_issues
from workers.dvcops.spec_checks import spec_issues


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
