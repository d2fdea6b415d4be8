"""An experiment's copy of a workspace: a git worktree at the base, the working tree's changes, DVC's cache shared.

The worktree shares the workspace's git objects and refs (so a DVC experiment saved in it is the workspace's, in
``refs/exps``); DVC's cache is the workspace's through the copy's own ``cache.dir`` (``.dvc/config.local``, which git
never sees), so outputs are read from it and new ones land in it, never copied between the two. Nothing here writes
into the workspace's files: only git's own bookkeeping under ``.git/worktrees``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path

from app.domain.errors import InvalidInput, Issue, WorkspaceError
from workers import gitops
from workers.dvcops.repo import open_repo

logger = logging.getLogger(__name__)

COPIES_FOLDER = ".experiments"
"""Under the workspace root, beside the workspaces (whose folders are project ids)."""


def copy_path(workspace_root: Path, experiment_id: str) -> Path:
    return workspace_root / COPIES_FOLDER / experiment_id


def resolve_base(workspace: Path, base_rev: str | None) -> str:
    """The commit an experiment starts from: ``base_rev``, or HEAD."""
    sha = gitops.resolve(workspace, base_rev or "HEAD")
    if sha is None:
        what = f"no revision {base_rev[:60]!r} in the repository" if base_rev else "the workspace has no commit yet"
        raise InvalidInput([Issue(path="baseRev", message=what)])
    return sha


def make_copy(workspace: Path, copy: Path, base_rev: str | None) -> str:
    """Set up ``copy`` (under the workspace lock) and return the base commit.

    With no ``base_rev`` the copy is the last commit plus the working tree's changes, tracked and untracked (files
    the service writes are not committed until a user commits them); ignored files are not carried over, DVC's
    outputs among them: those are checked out from the shared cache.
    """
    sha = resolve_base(workspace, base_rev)
    gitops.git(workspace, "worktree", "prune")  # entries of copies removed without git (a worker that died)
    copy.parent.mkdir(parents=True, exist_ok=True)
    gitops.git(workspace, "worktree", "add", "--detach", "--force", str(copy), sha)
    if base_rev is None:
        carry_changes(workspace, copy)
    share_cache(workspace, copy)
    return sha


def changed_paths(workspace: Path) -> list[str]:
    """Tracked files that differ from HEAD (deleted ones too), then untracked files git does not ignore."""
    tracked = gitops.git(
        workspace, "diff", "HEAD", "--name-only", "--no-renames", "-z", "--no-ext-diff", "--no-textconv"
    )
    untracked = gitops.git(workspace, "ls-files", "--others", "--exclude-standard", "-z")
    return [p for p in dict.fromkeys(tracked.split("\0") + untracked.split("\0")) if p]


def carry_changes(workspace: Path, copy: Path) -> None:
    for relative in changed_paths(workspace):
        source, target = workspace / relative, copy / relative
        if not os.path.lexists(source):
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
            continue
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif os.path.lexists(target):
            target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        # A link is copied as a link (as git would check it out), never followed.
        shutil.copy2(source, target, follow_symlinks=False)


def share_cache(workspace: Path, copy: Path) -> None:
    """The workspace's local DVC config, then its cache as the copy's, then the outputs the base names checked
    out from it (those missing from the cache are left to the run, which makes them)."""
    from dvc.exceptions import DvcException

    local_config = workspace / ".dvc" / "config.local"
    if local_config.is_file():
        shutil.copy2(local_config, copy / ".dvc" / "config.local")
    with open_repo(workspace) as repo:
        cache_dir = str(repo.cache.local_cache_dir)
    with open_repo(copy) as repo, repo.config.edit("local") as config:
        config["cache"]["dir"] = cache_dir
    with open_repo(copy) as repo:
        try:
            repo.checkout()
        except DvcException as missing:
            logger.info("copy %s: some outputs are not in the cache yet: %s", copy.name, missing)


def remove_copy(workspace: Path | None, copy: Path) -> None:
    """Remove the copy and git's record of it (none left to remove when the workspace is gone); never raises (the
    copies folder is looked at again by workers.experiments.job.remove_stale_copies)."""
    try:
        if copy.exists():
            shutil.rmtree(copy)
        if workspace is not None and workspace.is_dir():
            gitops.git(workspace, "worktree", "prune")
    except (OSError, WorkspaceError):
        logger.warning("could not remove the experiment copy %s", copy, exc_info=True)
