"""Promoting or removing saved experiments in the workspace: a git branch of one (``dvc exp branch``), its files in
the working tree (``dvc exp apply``), a commit of them on the current branch (``dvc exp apply`` then ``git commit``,
as DVC's docs persist an experiment), and ``dvc exp remove``.

``Repo.experiments.branch`` (dvc/repo/experiments/branch.py) resolves the experiment's ref and sets
``refs/heads/<branch>`` to its commit; it neither reads nor changes the process's cwd nor the working tree, so it
runs in the worker's thread on the workspace's Repo. The branch name is git's verdict
(``git check-ref-format --branch``), asked before DVC is. ``Repo.experiments.remove`` deletes the refs the same
way, without touching the working tree. ``Repo.experiments.apply`` writes the experiment's files into the working tree
(it stashes the working tree's changes, checks the experiment's commit out detached, goes back to the branch and
restores the files the experiment does not have, then ``dvc checkout --force``), all with paths from the repository's
root, never the cwd. DVC overwrites uncommitted changes; the service refuses to unless asked to.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.domain.errors import Conflict, InvalidInput, Issue, WorkspaceBusy, WorkspaceError
from workers import gitops
from workers.dvcops.repo import open_repo

MAX_BRANCH_LENGTH = 200
SHOWN_CHANGES = 5


@contextmanager
def dvc_failures(doing: str) -> Iterator[None]:
    """DVC's refusals as the service's typed errors: a DVC exception must not travel back to the API process (it
    would be unpickled there, importing DVC)."""
    from dvc.exceptions import DvcException
    from dvc.lock import LockError

    try:
        yield
    except LockError as busy:
        raise WorkspaceBusy(f"DVC's lock on the workspace is held; try {doing} again shortly") from busy
    except DvcException as refused:
        raise WorkspaceError(f"DVC could not {doing}: {refused}") from refused


@dataclass(frozen=True, slots=True)
class Branch:
    name: str
    sha: str


def check_branch_name(name: str) -> None:
    """InvalidInput unless git takes ``name`` as a branch name as it is (no expansion like ``@{-1}``)."""
    problem = [Issue(path="branch", message=f"{name[:60]!r} is not a valid git branch name")]
    if not name or len(name) > MAX_BRANCH_LENGTH or name.startswith("-") or "\n" in name or "\0" in name:
        raise InvalidInput(problem)
    # Outside any repository: git has no previous branch to expand ``@{-N}`` to.
    with tempfile.TemporaryDirectory(prefix="check-ref-") as outside:
        normalized = gitops.git(None, "check-ref-format", "--branch", name, cwd=Path(outside), check=False)
    if normalized.strip() != name:
        raise InvalidInput(problem)


def branch_experiment(workspace: Path, exp_ref: str, exp_rev: str, branch: str) -> Branch:
    """``dvc exp branch <exp_ref> <branch>`` in the workspace; Conflict when the branch exists or the experiment's
    ref is gone, InvalidInput for a bad name."""
    check_branch_name(branch)
    if gitops.resolve(workspace, f"refs/heads/{branch}") is not None:
        raise Conflict(f"the workspace already has a branch {branch!r}")
    _check_still_there(workspace, exp_ref, exp_rev)
    from dvc.exceptions import InvalidArgumentError

    with dvc_failures("make the branch"), open_repo(workspace) as repo:
        try:
            repo.experiments.branch(exp_ref, branch)
        except InvalidArgumentError as refused:
            raise Conflict(f"DVC refused the branch: {refused}") from refused
    sha = gitops.resolve(workspace, f"refs/heads/{branch}")
    if sha is None:
        raise WorkspaceError(f"DVC made no branch {branch!r}")
    return Branch(name=branch, sha=sha)


def remove_experiments(workspace: Path, exp_refs: list[str]) -> list[str]:
    """``dvc exp remove <ref>...`` for the refs the workspace still has (one may have been removed by hand); the refs
    removed. WorkspaceError if DVC left one behind."""
    present = [ref for ref in exp_refs if gitops.resolve(workspace, ref) is not None]
    if not present:
        return []
    with dvc_failures("remove the experiments"), open_repo(workspace) as repo:
        repo.experiments.remove(exp_names=present)
    left = [ref for ref in present if gitops.resolve(workspace, ref) is not None]
    if left:
        raise WorkspaceError(f"DVC did not remove {', '.join(left)}")
    return present


def apply_experiment(workspace: Path, exp_ref: str, exp_rev: str, *, force: bool) -> list[str]:
    """``dvc exp apply <ref>`` in the workspace; the files that then differ from HEAD. Conflict while tracked files
    have uncommitted changes (they would be overwritten) unless ``force``, or when the experiment's ref is gone."""
    _check_still_there(workspace, exp_ref, exp_rev)
    changed = [c.path for c in gitops.status(workspace, untracked=False)]
    if changed and not force:
        shown = ", ".join(changed[:SHOWN_CHANGES]) + (" ..." if len(changed) > SHOWN_CHANGES else "")
        raise Conflict(
            f"the workspace has uncommitted changes to tracked files ({shown}) that applying would overwrite; "
            "commit them, or apply with force"
        )
    with dvc_failures("apply the experiment"), open_repo(workspace) as repo:
        repo.experiments.apply(exp_ref)
    return [c.path for c in gitops.status(workspace, untracked=False)]


@dataclass(frozen=True, slots=True)
class Committed:
    sha: str
    branch: str
    files: list[str]


def commit_experiment(
    workspace: Path,
    exp_ref: str,
    exp_rev: str,
    *,
    message: str,
    author_name: str,
    author_email: str,
    force: bool,
) -> Committed:
    """The experiment as a commit on the workspace's current branch: ``dvc exp apply`` (its files and outputs in
    the working tree), then one commit of exactly the files the experiment changed against its base (not DVC's
    bookkeeping in .dvc/tmp), authored and committed as the user.

    Conflict when HEAD is not on a branch, when the branch has moved on from the experiment's base (its changes
    since would be undone: branch the experiment instead), when the experiment changed nothing, or (unless
    ``force``) while tracked files have uncommitted changes."""
    _check_still_there(workspace, exp_ref, exp_rev)
    branch = gitops.current_branch(workspace)
    if branch is None:
        raise Conflict(
            "the workspace's HEAD is not on a branch (detached); check a branch out, or branch the experiment"
        )
    base = gitops.resolve(workspace, f"{exp_rev}^")
    head = gitops.resolve(workspace, "HEAD")
    if base is None or head != base:
        raise Conflict(
            f"branch {branch!r} has moved on from the experiment's base {str(base)[:12]}; committing would undo the "
            "commits since: branch the experiment instead, or run it again on the branch"
        )
    files = _changed_by(workspace, exp_rev)
    if not files:
        raise Conflict("the experiment changed nothing git tracks against its base; nothing to commit")
    apply_experiment(workspace, exp_ref, exp_rev, force=force)
    sha = gitops.commit_paths(workspace, files, message=message, author_name=author_name, author_email=author_email)
    if sha is None:
        raise WorkspaceError("applying the experiment left the workspace as its last commit; nothing was committed")
    return Committed(sha=sha, branch=branch, files=files)


# DVC's own temporary folder (git-ignored by DVC's .dvc/.gitignore): DVC commits its packed arguments there
# (.dvc/tmp/repro.dat) into each experiment's commit, for itself; ``dvc exp apply`` deletes them again.
DVC_TMP = ".dvc/tmp/"


def _changed_by(workspace: Path, exp_rev: str) -> list[str]:
    """The paths the experiment's commit changed against its parent (its base), but DVC's bookkeeping."""
    listed = gitops.git(
        workspace, "diff-tree", "-r", "--no-commit-id", "--name-only", "--no-renames", "-z", f"{exp_rev}^", exp_rev
    )
    return [path for path in listed.split("\0") if path and not path.startswith(DVC_TMP)]


def _check_still_there(workspace: Path, exp_ref: str, exp_rev: str) -> None:
    if gitops.resolve(workspace, exp_ref) != exp_rev:
        raise Conflict(f"the experiment's DVC ref {exp_ref} is gone from the workspace (removed by hand?)")
