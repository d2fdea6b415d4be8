"""Experiments made by DVC itself (``dvc exp run``), found in the workspace's ``refs/exps`` and read as
``dvc exp show`` shows them.

``git clone`` brings branches and tags, not ``refs/exps``: DVC shares experiments with ``dvc exp push``, which puts
them in the remote's ``refs/exps``, and ``dvc exp pull`` fetches them (plus their outputs, from a DVC remote, which
listing does not need). The service fetches the git part the same way, into a staging namespace first: a ref of
the workspace is never overwritten (an experiment of the service could share its path), only added. DVC's executor
bookkeeping (``refs/exps/exec/*``) is never fetched.

Reading goes through DVC's own ``Repo.experiments.show`` for the baselines the refs name, as ``dvc exp show --json``
does; each experiment's params and metrics are its ``data``, its baseline's are what deltas are taken against.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from app.domain.errors import WorkspaceError
from app.domain.experiments import ParamOverride
from app.domain.results import ResultsSnapshot
from workers import gitops
from workers.dvcops.repo import open_repo
from workers.dvcops.results import snapshot_of_shown
from workers.experiments.promotion import dvc_failures
from workers.experiments.saving import EXPERIMENT_REFS

EXECUTOR_REFS = f"{EXPERIMENT_REFS}/exec/"
STAGING = "refs/service-fetched-exps"
FETCH_TIMEOUT_SECONDS = 300.0
_FIELD = "\x1f"


@dataclass(frozen=True, slots=True)
class FoundExperiment:
    name: str
    ref: str
    rev: str
    baseline_sha: str
    committed_at: datetime
    results: ResultsSnapshot
    baseline: ResultsSnapshot

    @property
    def changed_params(self) -> list[ParamOverride]:
        """Its params that differ from its baseline's (DVC keeps no record of the ``-S`` it was given)."""
        before = {(e.file, e.key): e.value_json for e in self.baseline.params}
        return [
            ParamOverride(file=e.file, key=e.key, value=e.value_json)
            for e in self.results.params
            if e.value_json is not None and before.get((e.file, e.key)) != e.value_json
        ]


def fetch_experiment_refs(root: Path, remote: str = "origin") -> list[str]:
    """The git half of ``dvc exp pull``: the remote's ``refs/exps`` (not DVC's executor refs) added to the
    workspace's, never replacing one it has; the refs added. Nothing when the workspace has no such remote."""
    if remote not in gitops.git(root, "remote").split():
        return []
    gitops.git(
        root,
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        remote,
        f"+{EXPERIMENT_REFS}/*:{STAGING}/*",
        f"^{EXECUTOR_REFS}*",
        timeout=FETCH_TIMEOUT_SECONDS,
    )
    added = []
    try:
        for ref, sha, _ in _refs(root, STAGING):
            target = EXPERIMENT_REFS + ref.removeprefix(STAGING)
            # The empty old value: git creates the ref only if it does not exist.
            gitops.git(root, "update-ref", target, sha, "", check=False)
            if gitops.resolve(root, target) == sha:
                added.append(target)
    finally:
        for ref, _, _ in _refs(root, STAGING):
            gitops.git(root, "update-ref", "-d", ref, check=False)
    return added


def found_experiments(root: Path) -> list[FoundExperiment]:
    """Every experiment in ``refs/exps`` with its params and metrics as ``dvc exp show`` shows them."""
    refs = {sha: (ref, when) for ref, sha, when in _refs(root, EXPERIMENT_REFS) if not ref.startswith(EXECUTOR_REFS)}
    if not refs:
        return []
    baselines = sorted({_baseline_of(ref) for ref, _ in refs.values()})
    with dvc_failures("list the repository's experiments"), open_repo(root) as repo:
        shown = [state.dumpd() for state in repo.experiments.show(revs=baselines, hide_workspace=True)]
    found = []
    for baseline in shown:
        baseline_results = snapshot_of_shown(root, baseline.get("data") or {})
        for group in baseline.get("experiments") or []:
            for rev in group.get("revs") or []:
                if rev.get("rev") not in refs or rev.get("error"):
                    continue
                ref, when = refs[rev["rev"]]
                found.append(
                    FoundExperiment(
                        name=ref.rsplit("/", 1)[-1],
                        ref=ref,
                        rev=rev["rev"],
                        baseline_sha=_baseline_of(ref),
                        committed_at=when,
                        results=snapshot_of_shown(root, _data(rev)),
                        baseline=baseline_results,
                    )
                )
    return sorted(found, key=lambda f: (f.committed_at, f.name))


def _data(rev: dict[str, Any]) -> dict[str, Any]:
    data = rev.get("data")
    return data if isinstance(data, dict) else {}


def _baseline_of(ref: str) -> str:
    """refs/exps/<baseline[:2]>/<baseline[2:]>/<name> (DVC's ExpRefInfo)."""
    parts = ref.removeprefix(EXPERIMENT_REFS + "/").split("/")
    if len(parts) < 3:
        raise WorkspaceError(f"{ref} is not a DVC experiment ref")
    return parts[0] + parts[1]


def _refs(root: Path, prefix: str) -> list[tuple[str, str, datetime]]:
    listed = gitops.git(
        root, "for-each-ref", f"--format=%(refname){_FIELD}%(objectname){_FIELD}%(committerdate:iso-strict)", prefix
    )
    found = []
    for line in listed.splitlines():
        if line:
            ref, sha, when = line.split(_FIELD, 2)
            found.append((ref, sha, datetime.fromisoformat(when)))
    return found
