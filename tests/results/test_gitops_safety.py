"""Git as the service runs it executes nothing from the workspace: no hooks, no fsmonitor, no filter drivers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from app.domain.errors import Conflict, InvalidInput
from workers import gitops


def plain_git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    return subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True, check=False)


@pytest.fixture
def booby_trapped(tmp_path: Path) -> tuple[Path, Path]:
    """A repository whose hooks, fsmonitor and filter driver each leave a mark when they run."""
    root, marks = tmp_path / "ws", tmp_path / "marks"
    root.mkdir()
    marks.mkdir()
    plain_git(root, "init", "-q")
    (root / "a.txt").write_text("one\n")
    plain_git(root, "add", "a.txt")
    plain_git(root, "commit", "-qm", "first")
    for hook in ("pre-commit", "commit-msg", "post-commit", "post-index-change"):
        script = root / ".git" / "hooks" / hook
        script.write_text(f"#!/bin/sh\ntouch {marks}/{hook}\n")
        script.chmod(0o755)
    monitor = root / "monitor.sh"
    monitor.write_text(f"#!/bin/sh\ntouch {marks}/fsmonitor\n")
    monitor.chmod(0o755)
    plain_git(root, "config", "core.fsmonitor", str(monitor))
    plain_git(root, "config", "filter.evil.clean", f"sh -c 'touch {marks}/filter; cat'")
    plain_git(root, "config", "alias.status", f"!touch {marks}/alias")
    (root / ".gitattributes").write_text("*.txt filter=evil\n")
    return root, marks


def test_commits_status_and_log_run_no_hook_fsmonitor_or_filter(booby_trapped: tuple[Path, Path]) -> None:
    root, marks = booby_trapped
    (root / "a.txt").write_text("two\n")
    (root / "b.txt").write_text("new\n")

    changed = gitops.status(root, untracked=True)
    sha = gitops.commit_paths(root, ["a.txt", "b.txt"], message="results", author_name="alice", author_email="a@x")
    history = gitops.log(root, skip=0, count=5)

    assert sorted(c.path for c in changed) == [".gitattributes", "a.txt", "b.txt", "monitor.sh"]
    assert sha is not None and history[0].sha == sha and history[0].author_name == "alice"
    assert "a.txt" in gitops.show_stat(root, sha) and "b.txt" in gitops.show_stat(root, sha)
    assert sorted(p.name for p in marks.iterdir()) == []
    # The traps are real: git run the ordinary way springs them.
    (root / "a.txt").write_text("three\n")
    plain_git(root, "commit", "-qam", "plain")
    assert {"pre-commit", "post-commit", "fsmonitor", "filter"} <= {p.name for p in marks.iterdir()}


def test_nothing_changed_commits_nothing(booby_trapped: tuple[Path, Path]) -> None:
    root, _ = booby_trapped
    head = gitops.resolve(root, "HEAD")
    assert gitops.commit_paths(root, ["a.txt"], message="m", author_name="a", author_email="a@x") is None
    assert gitops.commit_paths(root, [], message="m", author_name="a", author_email="a@x") is None
    assert gitops.resolve(root, "HEAD") == head


def test_tags_refuse_bad_names_unknown_revisions_and_duplicates(booby_trapped: tuple[Path, Path]) -> None:
    root, marks = booby_trapped
    tag = gitops.tag(root, revision="HEAD", name="v1.0", message="release", tagger_name="a", tagger_email="a@x")
    assert tag.sha == gitops.resolve(root, "HEAD")
    assert [(t.name, t.sha, t.message) for t in gitops.tags(root)] == [("v1.0", tag.sha, "release")]
    for bad in ("-x", "a..b", "has space", "x.lock", ""):
        with pytest.raises(InvalidInput):
            gitops.tag(root, revision="HEAD", name=bad, message="", tagger_name="a", tagger_email="a@x")
    with pytest.raises(InvalidInput):
        gitops.tag(root, revision="--all", name="v2", message="", tagger_name="a", tagger_email="a@x")
    with pytest.raises(Conflict):
        gitops.tag(root, revision="HEAD", name="v1.0", message="", tagger_name="a", tagger_email="a@x")
    assert list(marks.iterdir()) == []
