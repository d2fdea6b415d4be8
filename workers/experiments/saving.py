"""Saving a finished experiment's copy as a DVC experiment: ``dvc exp save`` in the copy.

DVC's ``Repo.experiments.save`` works from the process's cwd (it takes the working directory inside the repository
and changes it while it saves, dvc/repo/experiments/executor/base.py), which a worker running other jobs in threads
cannot give it: so DVC's own command runs in the copy, in a process of its own.

``Repo.experiments.save`` commits the copy's state on top of its base commit and names it
``refs/exps/<base>/<name>``; the copy is a worktree of the workspace, so the ref is the workspace's and
``dvc exp show`` there lists the experiment. Untracked files of the copy (the workspace's own files the service
wrote and nobody committed yet, carried into the copy) go into the experiment's commit, as with
``dvc exp save --include-untracked``, so the experiment is complete without the workspace.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from app.domain.errors import WorkspaceError
from workers import gitops

EXPERIMENT_REFS = "refs/exps"
SAVE_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class SavedExperiment:
    ref: str
    rev: str


def save_experiment(copy: Path, name: str) -> SavedExperiment:
    baseline = gitops.git(copy, "rev-parse", "HEAD").strip()
    untracked = [p for p in gitops.git(copy, "ls-files", "--others", "--exclude-standard", "-z").split("\0") if p]
    command = [sys.executable, "-m", "dvc", "exp", "save", "--quiet", "--name", name]
    for path in untracked:
        command += ["--include-untracked", path]
    try:
        done = subprocess.run(
            command,
            cwd=copy,
            env=_environment(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=SAVE_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise WorkspaceError(f"DVC did not save the experiment within {SAVE_TIMEOUT_SECONDS:g} s") from error
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise WorkspaceError(f"DVC could not save the experiment: {detail[-1] if detail else done.returncode}")
    ref = experiment_ref(baseline, name)
    rev = gitops.resolve(copy, ref)
    if rev is None:
        raise WorkspaceError(f"DVC saved the experiment but there is no {ref}")
    return SavedExperiment(ref=ref, rev=rev)


def experiment_ref(baseline: str, name: str) -> str:
    """Where DVC keeps an experiment (its ExpRefInfo): refs/exps/<baseline[:2]>/<baseline[2:]>/<name>."""
    return f"{EXPERIMENT_REFS}/{baseline[:2]}/{baseline[2:]}/{name}"


def _environment() -> dict[str, str]:
    """Nothing of the worker's own settings or secrets; an empty HOME (no user-wide git or DVC config)."""
    home = tempfile.gettempdir()
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "XDG_CONFIG_HOME": os.path.join(home, "dvc-exp-save-no-config"),
        "LC_ALL": "C.UTF-8",
        "DVC_NO_ANALYTICS": "1",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
