from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CHAIN, chain_stages, run_git

from app.domain.errors import WorkspaceError
from workers.dvcops import discover_pipelines, init_workspace, write_pipeline


def test_empty_workspace_is_a_committed_git_and_dvc_repo(tmp_path: Path) -> None:
    root = tmp_path / "project"

    init_workspace(root, None)

    assert (root / ".dvc").is_dir()
    assert "analytics = false" in (root / ".dvc" / "config").read_text()
    assert run_git(root, "log", "--oneline").strip()
    assert run_git(root, "status", "--porcelain") == ""


def test_clone_keeps_dvc_setup_and_discovers_its_pipelines(tmp_path: Path, make_workspace: Callable[[], Path]) -> None:
    source = make_workspace()
    write_pipeline(source, CHAIN, chain_stages())
    (source / "dvc.yaml").write_text(
        "stages:\n  greet:\n    foreach: [en, fr]\n    do:\n      cmd: echo ${item} > hello-${item}.txt\n"
        "      outs:\n        - hello-${item}.txt\n"
    )
    run_git(source, "add", "--all")
    run_git(source, "commit", "--quiet", "--message", "pipelines")
    clone = tmp_path / "clone"

    init_workspace(clone, str(source))

    assert "analytics = false" in (clone / ".dvc" / "config.local").read_text()
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True)
    assert status.stdout == "", "the clone's tracked files are unchanged"
    found = dict(discover_pipelines(clone))
    assert sorted(found) == ["dvc.yaml", CHAIN]
    assert [s.name for s in found[CHAIN]] == ["prepare", "train", "evaluate"]
    # foreach stages are expanded as DVC expands them, under DVC's generated names.
    assert [(s.name, s.cmd, s.outs, s.wdir) for s in found["dvc.yaml"]] == [
        ("greet@en", "echo en > hello-en.txt", ["hello-en.txt"], "."),
        ("greet@fr", "echo fr > hello-fr.txt", ["hello-fr.txt"], "."),
    ]


def test_failed_clone_leaves_nothing_behind(tmp_path: Path) -> None:
    root = tmp_path / "project"

    with pytest.raises(WorkspaceError, match="git clone failed"):
        init_workspace(root, str(tmp_path / "no-such-repository"))

    assert not root.exists()


def test_existing_non_empty_folder_is_refused_and_kept(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "keep.txt").write_text("mine")

    with pytest.raises(WorkspaceError, match="not empty"):
        init_workspace(root, None)

    assert (root / "keep.txt").read_text() == "mine"
