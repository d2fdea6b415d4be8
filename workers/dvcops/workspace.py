"""Creating a workspace: an empty git+DVC project, or a clone of an existing repository."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from app.domain.errors import WorkspaceError
from workers import gitops
from workers.dvcops import dvc_internals

GIT_USER_NAME = "DVC Pipelines Service"
GIT_USER_EMAIL = "dvc-pipelines@localhost"
# A clone that hangs (unreachable host, a server that never answers) must not hold a worker forever.
GIT_TIMEOUT_SECONDS = 600
# `https://user:token@host/...`: git may echo the URL in its errors, which end up in user-facing messages.
URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def init_workspace(root: Path, repository_url: str | None) -> None:
    """Create the workspace at ``root``: empty (git init + dvc init + a first commit) or cloned.

    A clone gets ``dvc init`` only when it has no ``.dvc/``. DVC analytics are switched off in
    ``.dvc/config`` (new workspaces) or ``.dvc/config.local`` (clones, so git sees no change).
    On failure nothing is left behind and WorkspaceError says why.
    """
    created = not root.exists()
    if not created and any(root.iterdir()):
        raise WorkspaceError(f"workspace folder {root} already exists and is not empty")
    try:
        if repository_url:
            _clone(repository_url, root)
            if not (root / ".dvc").is_dir():
                _dvc_init(root)
            # In .dvc/config.local, which DVC keeps out of git: the clone's tracked files stay untouched.
            _disable_analytics(root, level="local")
        else:
            root.mkdir(parents=True, exist_ok=True)
            _git(["init", "--quiet"], cwd=root)
            _configure_git_user(root)
            _dvc_init(root)
            _disable_analytics(root, level="repo")
            _git(["add", "--all"], cwd=root)
            _git(["commit", "--quiet", "--message", "Initialize DVC workspace"], cwd=root)
    except BaseException as exc:
        _clean_up(root, created)
        if isinstance(exc, WorkspaceError):
            raise
        if isinstance(exc, Exception):
            raise WorkspaceError(f"could not prepare workspace {root}: {exc}") from exc
        raise


def _clone(repository_url: str, root: Path) -> None:
    root.parent.mkdir(parents=True, exist_ok=True)
    # `--` keeps a URL starting with '-' from being read as an option.
    _git(["clone", "--quiet", "--", repository_url, str(root)], cwd=root.parent)
    _configure_git_user(root)


def _configure_git_user(root: Path) -> None:
    # Local, so that later commits in the workspace never depend on the worker's global git config.
    _git(["config", "user.name", GIT_USER_NAME], cwd=root)
    _git(["config", "user.email", GIT_USER_EMAIL], cwd=root)


def _dvc_init(root: Path) -> None:
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        Repo.init(str(root)).close()
    except DvcException as exc:
        raise WorkspaceError(f"dvc init failed in {root}: {exc}") from exc


def _disable_analytics(root: Path, *, level: str) -> None:
    # Through DVC's own config writer (validated, DVC's format); the string is what
    # `dvc config core.analytics false` stores.
    config = dvc_internals.repository_config(str(root / ".dvc"))
    with config.edit(level) as conf:
        conf["core"]["analytics"] = "false"


def _git(args: list[str], cwd: Path) -> None:
    # Through workers.gitops like every git command of the service (nothing from the repository executes).
    repository = cwd if (cwd / ".git").exists() or args[0] == "init" else None
    try:
        gitops.git(repository, *args, cwd=cwd, timeout=GIT_TIMEOUT_SECONDS)
    except WorkspaceError as error:
        raise WorkspaceError(URL_CREDENTIALS.sub(r"\g<scheme>***@", error.message)) from error


def _clean_up(root: Path, created: bool) -> None:
    if created:
        shutil.rmtree(root, ignore_errors=True)
    elif root.is_dir():
        for child in root.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
