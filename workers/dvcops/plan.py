"""dry_run_plan: every stage a `dvc repro` with the same options may execute, in DVC's order.

`dvc repro --dry` names only the first stale stage of a chain, because the stages after it are
up to date until it has run. Here each stage DVC would visit is classified instead:
WILL_RUN (changed itself, or forced), IF_UPSTREAM_CHANGES (up to date, but consumes outputs of a
planned stage, so it runs if those outputs change), or skipped (up_to_date).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.domain.errors import InvalidInput, Issue
from app.domain.pipelines import ChangeKind, DryRunPlan, PlanCertainty, PlannedStage, StageChange
from workers.dvcops import dvc_internals
from workers.dvcops.changes import LockedStages, stage_changes
from workers.dvcops.paths import relative_to_root
from workers.dvcops.repo import existing_pipeline_file, is_pipeline_stage, stage_label, stages_of
from workers.dvcops.stage_locks import reading_stages
from workers.dvcops.visit import repro_order
from workers.dvcops.warm import WarmRepos, locked_repo


def dry_run_plan(
    root: Path,
    pipeline_path: str,
    *,
    force: bool,
    targets: list[str],
    downstream: bool,
    single_item: bool = False,
    repos: WarmRepos | None = None,
) -> DryRunPlan:
    """The plan of `dvc repro [-f] [--downstream] [-s] <pipeline_path>[:target ...]`.

    ``targets`` are stage names of this pipeline or foreach/matrix group names (``train`` for
    ``train@0``, ``train@1``...), resolved by DVC's own loader as `dvc repro` resolves them; empty: all
    of the pipeline's stages. With ``single_item`` only the targets are visited, not their upstream.
    Stages of other pipelines that the run would visit (upstream, or downstream with ``downstream``)
    are named ``<dvc.yaml>:<stage>``. Frozen stages never execute their command; one DVC sees unchanged
    is skipped, one that never ran (or whose outputs or command changed, or that is forced) is planned,
    as `dvc repro` reproduces it: by recording its outputs. With ``repos``, the workspace's Repo and
    index are reused while its pipeline files are unchanged.
    """

    file = existing_pipeline_file(root, pipeline_path)
    with locked_repo(root, repos) as opened:
        repo = opened.repo
        graph = repo.index.graph
        selected = _selected(repo, file, stages_of(graph, file), targets)
        # Exactly what Repo.reproduce does: frozen stages cut off from their dependencies, then a
        # post-order walk from the selected stages (over the reversed graph with --downstream);
        # with --single-item, the selected stages alone.
        active = dvc_internals.active_graph(graph)
        steps = selected if single_item else repro_order(active, selected, downstream=downstream)
        asked = [s for s in steps if is_pipeline_stage(s)]
        with reading_stages(repo, asked):
            return _classify(Path(repo.root_dir), pipeline_path, active, steps, force=force, locked=opened.locked)


def _selected(repo: Any, file: Path, own: list[Any], targets: list[str]) -> list[Any]:
    """The pipeline's stages that ``targets`` name, in DVC's order (collect_stages: per target, no repeats)."""
    from dvc.exceptions import DvcException

    if not targets:
        return own
    by_name = {stage.name: stage for stage in own}
    selected: list[Any] = []
    unknown: list[Issue] = []
    for index, target in enumerate(targets):
        try:
            # DVC's own resolution of `dvc repro <file>:<target>`: a stage name, or a foreach/matrix group.
            names = [stage.name for stage in repo.stage.collect(f"{file}:{target}")] if target else []
        except DvcException:
            names = []
        if not names or any(name not in by_name for name in names):
            unknown.append(
                Issue(path=f"targets[{index}]", message=f"the pipeline has no stage named {target!r}", stage=target)
            )
            continue
        selected.extend(by_name[name] for name in names)
    if unknown:
        raise InvalidInput(unknown)
    return list(dict.fromkeys(selected))


def _classify(
    root: Path, pipeline_path: str, graph: Any, steps: list[Any], *, force: bool, locked: LockedStages
) -> DryRunPlan:
    planned: list[PlannedStage] = []
    planned_stages: set[Any] = set()
    up_to_date: list[str] = []
    for stage in steps:
        label = stage_label(root, stage, pipeline_path)
        if not is_pipeline_stage(stage):
            data_source = _data_source_step(root, stage, label, force=force)
            if data_source is not None:
                planned_stages.add(stage)
                planned.append(data_source)
            continue
        changes = stage_changes(root, stage, locked)
        if stage.frozen and not (force or _recorded_anew(changes)):
            up_to_date.append(label)
            continue
        # graph edges point from a stage to the stages producing its dependencies.
        upstream = [stage_label(root, s, pipeline_path) for s in graph.successors(stage) if s in planned_stages]
        # `changes` non-empty is Stage.reproduce's own test (stage.changed()) for a dvc.yaml stage;
        # asking DVC again would hash every dependency a second time.
        if force or changes:
            certainty = PlanCertainty.WILL_RUN
        elif upstream:
            certainty = PlanCertainty.IF_UPSTREAM_CHANGES
        else:
            up_to_date.append(label)
            continue
        planned_stages.add(stage)
        planned.append(
            PlannedStage(
                name=label,
                cmd=_command(stage.cmd),
                certainty=certainty,
                changes=changes,
                forced=force,
                upstream=upstream,
            )
        )
    return DryRunPlan(stages=planned, up_to_date=up_to_date)


def _data_source_step(root: Path, stage: Any, label: str, *, force: bool) -> PlannedStage | None:
    """A `.dvc` file `dvc repro` visits: it verifies its data and, when changed (or forced), hashes and caches it
    again and rewrites the file (Stage.reproduce -> run -> save, commit). An import (`dvc import`, frozen) or a
    callback is left alone, as before: reaching its source is not a workspace operation."""
    if not stage.is_data_source or stage.is_import or stage.frozen:
        return None
    changes = [
        StageChange(kind=ChangeKind.OUT, path=relative_to_root(root, out.fs_path), state=str(state))
        for out in stage.outs
        for state in out.status().values()
    ]
    if not (force or changes):
        return None
    return PlannedStage(
        name=label,
        cmd="",
        certainty=PlanCertainty.WILL_RUN,
        changes=changes,
        forced=force,
        upstream=[],
        data_source=True,
    )


def _recorded_anew(changes: list[StageChange]) -> bool:
    """Whether `dvc repro` reproduces a frozen stage anyway: it never runs its command nor looks at its dependencies,
    but one that never ran, whose command changed or whose outputs changed is reproduced (Stage.changed ignores only
    deps for it): DVC records its outputs again, and fails when they are missing. A run does the same through DVC."""
    return any(change.kind is not ChangeKind.ALWAYS_CHANGED for change in changes)


def _command(cmd: Any) -> str:
    return " && ".join(cmd) if isinstance(cmd, list) else str(cmd or "")
