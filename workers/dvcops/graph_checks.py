"""Proposed stages checked together with every other pipeline by DVC's graph building.

DVC's build_graph stops at the first problem; to report every faulty stage, the stage at fault is
taken out and the graph is built again, until it builds.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from app.domain.errors import Issue
from workers.dvcops import dvc_internals
from workers.dvcops.candidates import Candidate
from workers.dvcops.locate import DEP_FIELDS, OUT_FIELDS, locate
from workers.dvcops.paths import relative_to_root
from workers.dvcops.repo import in_file, stage_file

logger = logging.getLogger(__name__)


def graph_issues(repo: Any, file: Path, candidates: list[Candidate]) -> list[Issue]:
    from dvc.exceptions import (
        CyclicGraphError,
        OutputDuplicationError,
        OverlappingOutputPathsError,
        StagePathAsOutputError,
    )

    others = _other_stages(repo, file)
    remaining = list(candidates)
    issues: list[Issue] = []
    while True:
        by_stage = {c.stage: c for c in remaining}
        try:
            # Others first: a conflict with an existing pipeline is then blamed on the proposed stage.
            dvc_internals.build_stage_graph([*others, *(c.stage for c in remaining)])
            return issues
        except OutputDuplicationError as exc:
            found = _duplicate_output(repo.root_dir, by_stage, list(exc.stages))
        except OverlappingOutputPathsError as exc:
            found = _overlapping_outputs(repo.root_dir, by_stage, exc.parent, exc.overlapping_out)
        except CyclicGraphError:
            found = _cycle(repo.root_dir, by_stage, [*others, *(c.stage for c in remaining)])
        except StagePathAsOutputError as exc:
            found = [Issue(path="stages", message=f"the pipeline file is inside another stage's output: {exc}")]
        if not found or all(issue.stage is None for issue in found):
            # Not attributable to one proposed stage (the workspace itself is inconsistent): stop here.
            return [*issues, *found]
        issues.extend(found)
        blamed = {issue.stage for issue in found}
        remaining = [c for c in remaining if c.spec.name not in blamed]


def _other_stages(repo: Any, file: Path) -> list[Any]:
    """Every stage of the workspace except those of ``file``, whose stages the proposal replaces."""
    def skip_broken(path: str, exc: Exception) -> None:
        logger.warning("ignoring %s while validating: DVC cannot load it: %s", path, exc)

    index = dvc_internals.index_of(repo, onerror=skip_broken)
    return [stage for stage in index.stages if not in_file(stage, file)]


def _describe(root_dir: str, stage: Any, by_stage: dict[Any, Candidate]) -> str:
    if stage in by_stage:
        return f"stage '{stage.name}'"
    name = getattr(stage, "name", None)
    file = stage_file(Path(root_dir), stage)
    return f"stage '{name}' of {file}" if name else file


def _duplicate_output(root_dir: str, by_stage: dict[Any, Candidate], stages: list[Any]) -> list[Issue]:
    proposed = sorted((by_stage[s] for s in stages if s in by_stage), key=lambda c: c.index)
    if not proposed:
        return []
    blamed = proposed[-1]  # the later of two proposed stages; the earlier one keeps the output
    other = next(s for s in stages if s is not blamed.stage)
    shared = sorted({o.fs_path for o in blamed.stage.outs} & {o.fs_path for o in other.outs})
    shown = relative_to_root(Path(root_dir), shared[0])
    return [
        Issue(
            path=locate(root_dir, blamed.index, blamed.spec, shared[0], OUT_FIELDS),
            message=f"output '{shown}' is also an output of {_describe(root_dir, other, by_stage)}",
            stage=blamed.spec.name,
        )
    ]


def _overlapping_outputs(root_dir: str, by_stage: dict[Any, Candidate], parent: Any, inner: Any) -> list[Issue]:
    owners = [(out, by_stage[out.stage]) for out in (parent, inner) if out.stage in by_stage]
    if not owners:
        return []
    out, blamed = max(owners, key=lambda pair: pair[1].index)
    other = inner if out is parent else parent
    root = Path(root_dir)
    where = "contains" if out is parent else "is inside"
    return [
        Issue(
            path=locate(root_dir, blamed.index, blamed.spec, out.fs_path, OUT_FIELDS),
            message=f"output '{relative_to_root(root, out.fs_path)}' {where} output "
            f"'{relative_to_root(root, other.fs_path)}' of {_describe(root_dir, other.stage, by_stage)}; "
            "DVC cannot track an output inside another output",
            stage=blamed.spec.name,
        )
    ]


def _cycle(root_dir: str, by_stage: dict[Any, Candidate], stages: list[Any]) -> list[Issue]:
    """One issue per proposed stage on the cycle, at the dependency that closes it.

    DVC's CyclicGraphError carries only a message, so the cycle is found again on a graph with
    DVC's edges: a stage depends on every output that its dependency equals, is inside, or contains.
    """
    import networkx as nx

    outs = dvc_internals.outputs_trie(stages)
    graph = nx.DiGraph()
    for stage in stages:
        for dep in stage.deps:
            if dvc_internals.is_dataset_dependency(dep):
                continue
            key = dep.fs.parts(dep.fs_path)
            producers = [node.value for node in outs.prefixes(key)]
            if outs.has_subtrie(key):
                producers.extend(outs.values(prefix=key))
            for out in producers:
                if not graph.has_edge(stage, out.stage):
                    graph.add_edge(stage, out.stage, dep=dep)
    edges = nx.find_cycle(graph, orientation="original")
    members = ", ".join(_describe(root_dir, consumer, by_stage) for consumer, _, _ in edges)
    issues: list[Issue] = []
    for consumer, producer, _ in edges:
        if consumer not in by_stage:
            continue
        candidate, dep = by_stage[consumer], graph.edges[consumer, producer]["dep"]
        shown = relative_to_root(Path(root_dir), dep.fs_path)
        issues.append(
            Issue(
                path=locate(root_dir, candidate.index, candidate.spec, dep.fs_path, DEP_FIELDS),
                message=f"dependency '{shown}' closes a cycle: {members}",
                stage=candidate.spec.name,
            )
        )
    return issues
