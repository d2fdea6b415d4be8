"""What a requirements file may hold before uv, running as the worker outside any sandbox, sees it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.settings import InvalidSettings, Settings
from workers.environments.requirements import RequirementsRefused, check_requirements, read_requirements


@pytest.mark.parametrize(
    "content",
    [
        b"six\n",
        b"# pinned\nsix==1.17.0 --hash=sha256:0123abcd  # a comment\n\npandas>=2 ; python_version >= '3.9'\n",
        b"scikit-learn\\\n>=1.3\n",
        b"wheel-only @ https://example.org/wheel_only-1.0-py3-none-any.whl\n",
        b"",
    ],
)
def test_plain_requirements_are_accepted(content: bytes) -> None:
    check_requirements(content)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"six\n-r /etc/passwd\n", "line 2: options are not allowed"),
        (b"-c constraints.txt\n", "line 1: options are not allowed"),
        (b"-e .\n", "options are not allowed"),
        (b"--index-url http://mirror.invalid/simple\n", "options are not allowed"),
        (b"six --index-url http://mirror.invalid/simple\n", "option --index-url is not allowed"),
        (b"./vendor/package\n", "not a requirement"),
        (b"secret @ file:///root/secret.whl\n", "only https URLs may be named"),
        (b"six\x00\n", "control characters"),
        (b"\xff\xfe\n", "not UTF-8"),
    ],
)
def test_anything_else_is_refused_naming_the_line(content: bytes, problem: str) -> None:
    with pytest.raises(RequirementsRefused) as refused:
        check_requirements(content)
    assert problem in refused.value.message


def test_the_file_is_read_from_the_workspace_and_never_through_a_link(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    assert read_requirements(workspace) is None
    (workspace / "requirements.txt").write_text("six\n")
    read = read_requirements(workspace)
    assert read is not None and read.content == b"six\n" and read.source == "requirements.txt"

    outside = tmp_path / "outside.txt"
    outside.write_text("six\n")
    (workspace / "requirements.txt").unlink()
    os.symlink(outside, workspace / "requirements.txt")
    with pytest.raises(RequirementsRefused, match="symbolic link"):
        read_requirements(workspace)

    (workspace / "requirements.txt").unlink()
    (workspace / "requirements.txt").mkdir()
    with pytest.raises(RequirementsRefused, match="not a regular file"):
        read_requirements(workspace)


def test_the_environments_folder_defaults_beside_the_workspaces_and_never_inside_them(tmp_path: Path) -> None:
    workspaces = tmp_path / "data" / "workspaces"
    assert Settings.from_env({"WORKSPACE_ROOT": str(workspaces)}).environments_root == tmp_path / "data/environments"
    elsewhere = Settings.from_env({"WORKSPACE_ROOT": str(workspaces), "PROJECT_ENVIRONMENTS_ROOT": str(tmp_path / "e")})
    assert elsewhere.environments_root == tmp_path / "e"
    for inside in (workspaces / "envs", workspaces, tmp_path):
        with pytest.raises(InvalidSettings, match=r"PROJECT_ENVIRONMENTS_ROOT=.*must be outside WORKSPACE_ROOT"):
            Settings.from_env({"WORKSPACE_ROOT": str(workspaces), "PROJECT_ENVIRONMENTS_ROOT": str(inside)})


def test_a_chosen_path_is_opened_one_folder_at_a_time_never_through_a_link(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    (workspace / "env").mkdir(parents=True)
    (workspace / "env" / "ml.txt").write_text("six\n")
    read = read_requirements(workspace, "env/ml.txt")
    assert read is not None and read.source == "env/ml.txt"
    assert read_requirements(workspace, "absent/ml.txt") is None

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "ml.txt").write_text("six\n")
    os.symlink(outside, workspace / "linked")
    # Linux answers ENOTDIR for a link opened as a folder without following it: refused either way.
    with pytest.raises(RequirementsRefused, match="'linked' is"):
        read_requirements(workspace, "linked/ml.txt")
    with pytest.raises(RequirementsRefused, match="belongs to git and DVC"):
        read_requirements(workspace, ".git/config")
