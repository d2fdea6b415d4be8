"""Creating a workspace: an empty git+DVC project, or a clone of an existing repository."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from app.domain.errors import WorkspaceError

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
    from dvc.config import Config

    # Through DVC's own config writer (validated, DVC's format); the string is what
    # `dvc config core.analytics false` stores.
    config = Config(dvc_dir=str(root / ".dvc"), validate=False)
    with config.edit(level) as conf:
        conf["core"]["analytics"] = "false"


def _git(args: list[str], cwd: Path) -> None:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=True,
            timeout=GIT_TIMEOUT_SECONDS,
        )
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()
        reason = URL_CREDENTIALS.sub(r"\g<scheme>***@", detail[-1]) if detail else f"exit code {exc.returncode}"
        raise WorkspaceError(f"git {args[0]} failed: {reason}") from exc
    except subprocess.TimeoutExpired as exc:
        raise WorkspaceError(f"git {args[0]} took longer than {GIT_TIMEOUT_SECONDS} s") from exc


def _clean_up(root: Path, created: bool) -> None:
    if created:
        shutil.rmtree(root, ignore_errors=True)
    elif root.is_dir():
        for child in root.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
