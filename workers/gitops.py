"""Every git command the service runs, run so that nothing from the workspace executes.

A workspace is user territory: stage commands may write into ``.git`` and a cloned repository brings its own
config. So each call gets a clean environment (no system or global config, no attributes file, no prompts), no
hooks (``core.hooksPath`` points to an empty folder), no fsmonitor, no signing program, no pager or external diff,
and every filter driver the repository's config names is switched off for the call (``-c`` wins over config
files). Only builtin commands are run, so aliases never apply.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from datetime import datetime
from functools import cache
from pathlib import Path

from app.domain.errors import Conflict, InvalidInput, Issue, WorkspaceError
from app.domain.history import ChangedFile, Commit, Ref

GIT_TIMEOUT_SECONDS = 60.0
_FIELD = "\x1f"
_RECORD = "\x1e"
_LOG_FORMAT = _FIELD.join(["%H", "%an", "%ae", "%aI", "%s", "%b"]) + _RECORD
_FILTER_KEY = re.compile(r"^filter\.(.+)\.(clean|smudge|process)$")
# A tag or branch name as users type them; git's own check-ref-format has the last word.
_REF_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}")

SAFE_CONFIG = (
    "core.fsmonitor=false",
    "core.untrackedCache=false",
    "core.pager=cat",
    "core.editor=true",
    "core.askPass=",
    "core.sshCommand=",
    "credential.helper=",
    "diff.external=",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    "tag.forceSignAnnotated=false",
    "log.showSignature=false",
    "gpg.program=false",
    "status.showUntrackedFiles=all",
    "submodule.recurse=false",
    "protocol.ext.allow=never",
    "gc.auto=0",
    "maintenance.auto=false",
)


@cache
def _empty_hooks_dir() -> str:
    """An empty folder for ``core.hooksPath``: git finds no hook there, whatever ``.git/hooks`` holds."""
    return tempfile.mkdtemp(prefix="git-no-hooks-")


# Network settings a clone may need; nothing else of the worker's environment reaches git.
PASSED_THROUGH = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "SSL_CERT_FILE")


def _environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    home = _empty_hooks_dir()  # also an empty HOME: no ~/.gitconfig, no ~/.config/git
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env |= {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "XDG_CONFIG_HOME": home,
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_LITERAL_PATHSPECS": "1",
        "GIT_OPTIONAL_LOCKS": "0",
    }
    return env | (extra or {})


def _base_args(root: Path | None) -> list[str]:
    args = ["git", "--no-pager", "-c", f"core.hooksPath={_empty_hooks_dir()}"]
    for option in SAFE_CONFIG:
        args += ["-c", option]
    if root is not None:
        # Explicit, so a core.worktree or GIT_DIR-like setting in the workspace cannot point git elsewhere.
        args += ["-C", str(root), f"--git-dir={root / '.git'}", f"--work-tree={root}"]
        for driver in _filter_drivers(root):
            args += [
                "-c",
                f"filter.{driver}.clean=",
                "-c",
                f"filter.{driver}.smudge=",
                "-c",
                f"filter.{driver}.process=",
            ]
            args += ["-c", f"filter.{driver}.required=false"]
    return args


def _filter_drivers(root: Path) -> set[str]:
    """Filter drivers defined in the repository's own config (reading config runs nothing)."""
    done = subprocess.run(
        [
            "git",
            "config",
            "--file",
            str(root / ".git" / "config"),
            "--includes",
            "--name-only",
            "--get-regexp",
            "^filter[.]",
        ],
        env=_environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT_SECONDS,
        check=False,
    )
    return {m.group(1) for line in done.stdout.splitlines() if (m := _FILTER_KEY.match(line.strip()))}


def git(
    root: Path | None,
    *args: str,
    env: dict[str, str] | None = None,
    check: bool = True,
    cwd: Path | None = None,
    timeout: float = GIT_TIMEOUT_SECONDS,
) -> str:
    """Run ``git args`` in the repository ``root`` (None: no repository yet, in ``cwd``) as the service runs git;
    WorkspaceError with git's last line on failure."""
    command = [*_base_args(root), *args]
    try:
        done = subprocess.run(
            command,
            cwd=root or cwd or os.getcwd(),
            env=_environment(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise WorkspaceError(f"git {args[0]} took longer than {timeout:g} s") from error
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise WorkspaceError(f"git {args[0]} failed: {detail[-1] if detail else f'exit code {done.returncode}'}")
    return done.stdout


def _commits(output: str) -> list[Commit]:
    commits = []
    for record in output.split(_RECORD):
        record = record.strip("\n")
        if not record:
            continue
        sha, name, email, when, subject, body = record.split(_FIELD, 5)
        commits.append(Commit(sha, name, email, datetime.fromisoformat(when), subject, body.strip()))
    return commits


def log(root: Path, *, skip: int, count: int, paths: list[str] | None = None) -> list[Commit]:
    """Commits reachable from HEAD, newest first; with ``paths``, only those touching them."""
    if not has_commits(root):
        return []
    args = ["log", "--no-textconv", "--no-ext-diff", f"--format={_LOG_FORMAT}", f"--skip={skip}", f"-n{count}", "HEAD"]
    if paths is not None:
        args += ["--", *paths]
    return _commits(git(root, *args))


def has_commits(root: Path) -> bool:
    return git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False).strip() != ""


def branches(root: Path) -> list[Ref]:
    output = git(root, "for-each-ref", "--format=%(refname:short)%1f%(objectname)", "refs/heads")
    return [Ref(*line.split(_FIELD, 1)) for line in output.splitlines() if line]


def tags(root: Path) -> list[Ref]:
    output = git(
        root,
        "for-each-ref",
        "--format=%(refname:short)%1f%(*objectname)%(objectname)%1f%(contents:subject)",
        "refs/tags",
    )
    found = []
    for line in output.splitlines():
        if line:
            name, sha, subject = line.split(_FIELD, 2)
            # An annotated tag prints the commit (*objectname) then itself; the commit is the first 40 hex.
            found.append(Ref(name=name, sha=sha[:40], message=subject or None))
    return found


def current_branch(root: Path) -> str | None:
    name = git(root, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip()
    return name or None


def resolve(root: Path, revision: str) -> str | None:
    """The commit a revision names, or None."""
    if revision.startswith("-"):
        return None
    sha = git(root, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}", check=False)
    return sha.strip() or None


def status(root: Path, *, untracked: bool) -> list[ChangedFile]:
    """Files that differ from HEAD (and, with ``untracked``, files git does not track yet and does not ignore)."""
    # Submodules are not entered: their own config (filters) would apply there.
    mode = "all" if untracked else "no"
    output = git(root, "status", "--porcelain=v1", "-z", f"--untracked-files={mode}", "--ignore-submodules=all")
    entries = output.split("\0")
    changed = []
    index = 0
    while index < len(entries):
        entry = entries[index]
        index += 1
        if not entry:
            continue
        code, path = entry[:2], entry[3:]
        if code[0] in "RC":
            index += 1  # the rename's source path follows
        changed.append(ChangedFile(path=path, change=code))
    return changed


def commit_paths(root: Path, paths: list[str], *, message: str, author_name: str, author_email: str) -> str | None:
    """One commit of ``paths`` (only those), authored and committed as the user; None when none changed."""
    if not paths:
        return None
    git(root, "add", "--all", "--", *paths)
    staged = git(root, "diff", "--cached", "--name-only", "-z", "--no-ext-diff", "--", *paths).split("\0")
    if not any(staged):
        return None
    identity = {
        "GIT_AUTHOR_NAME": author_name,
        "GIT_AUTHOR_EMAIL": author_email,
        "GIT_COMMITTER_NAME": author_name,
        "GIT_COMMITTER_EMAIL": author_email,
    }
    git(root, "commit", "--no-verify", "--quiet", "--message", message, "--", *paths, env=identity)
    return git(root, "rev-parse", "HEAD").strip()


def check_tag_name(name: str) -> None:
    valid = bool(_REF_NAME.fullmatch(name)) and git(None, "check-ref-format", f"refs/tags/{name}", check=False) == ""
    if not valid or ".." in name or name.endswith((".lock", "/", ".")):
        raise InvalidInput([Issue(path="name", message=f"{name[:50]!r} is not a valid tag name")])


def tag(root: Path, *, revision: str, name: str, message: str, tagger_name: str, tagger_email: str) -> Ref:
    """An annotated tag ``name`` on ``revision``: InvalidInput for a bad name or revision, Conflict if it exists."""
    check_tag_name(name)
    sha = resolve(root, revision)
    if sha is None:
        raise InvalidInput([Issue(path="rev", message=f"no revision {revision[:50]!r} in the repository")])
    if resolve(root, f"refs/tags/{name}") is not None:
        raise Conflict(f"a tag named {name!r} already exists")
    identity = {"GIT_COMMITTER_NAME": tagger_name, "GIT_COMMITTER_EMAIL": tagger_email}
    git(root, "tag", "--annotate", "--message", message or name, name, sha, env=identity)
    return Ref(name=name, sha=sha, message=message or name)


def show_stat(root: Path, sha: str) -> str:
    """``git show --stat`` of a commit (for tests and people reading what a run committed)."""
    return git(root, "show", "--stat", "--no-textconv", "--no-ext-diff", "--format=%H %s", sha)
