"""Whether a workspace changed since a stored validation, from file times: what executePipeline trusts."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from app.services import workspace_changes
from app.services.workspace_changes import changed_since


def workspace(root: Path) -> datetime:
    (root / ".dvc" / "cache").mkdir(parents=True)
    (root / ".dvc" / "config").write_text("")
    (root / "pipelines/ml").mkdir(parents=True)
    (root / "params.yaml").write_text("lr: 1\n")
    stages = {"train": {"cmd": "cp ../../params.yaml model.txt", "wdir": "../..", "outs": ["model.txt", "out"]}}
    (root / "pipelines/ml/dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    moment = datetime.now(UTC)
    until_file_clock_passes(root, moment)
    return moment


def until_file_clock_passes(root: Path, moment: datetime) -> None:
    """File times come from a coarser clock than datetime.now(): wait (with a deadline) until a file written now is
    stamped after ``moment``, so that what the test writes next counts as written after it."""
    probe = root / ".dvc" / "clock-probe"  # DVC's folder is not looked at (its config aside)
    deadline = time.monotonic() + 2
    while True:
        probe.write_text("")
        if probe.stat().st_mtime > moment.timestamp():
            break
        assert time.monotonic() < deadline, "the file clock did not pass the moment"
    probe.unlink()


def run_products(root: Path) -> None:
    """What a run of the pipeline writes: its outputs, its lock file, .gitignore, DVC's cache."""
    (root / "model.txt").write_text("1")
    (root / "out").mkdir()
    (root / "out/part-0").write_text("x")
    (root / ".gitignore").write_text("/model.txt\n")
    (root / ".dvc/cache/ab").write_text("1")
    lock = {"schema": "2.0", "stages": {"train": {"cmd": "x", "outs": [{"path": "model.txt"}, {"path": "out"}]}}}
    (root / "pipelines/ml/dvc.lock").write_text(yaml.safe_dump(lock))


def test_nothing_written_since_is_unchanged(tmp_path: Path) -> None:
    assert not changed_since(tmp_path, workspace(tmp_path))


def test_a_runs_outputs_lock_and_cache_are_not_changes(tmp_path: Path) -> None:
    validated = workspace(tmp_path)
    run_products(tmp_path)

    assert not changed_since(tmp_path, validated)


@pytest.mark.parametrize("path", ["params.yaml", "data/new.csv", "pipelines/ml/dvc.yaml", ".dvc/config", "model.txt"])
def test_a_file_written_after_the_validation_is_a_change(tmp_path: Path, path: str) -> None:
    validated = workspace(tmp_path)
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    # model.txt is declared in dvc.yaml but not (yet) recorded as an output in a dvc.lock: not a run's product.
    (tmp_path / path).write_text("changed\n")

    assert changed_since(tmp_path, validated)


def test_a_lock_file_that_cannot_be_read_makes_every_recent_file_a_change(tmp_path: Path) -> None:
    validated = workspace(tmp_path)
    (tmp_path / "model.txt").write_text("1")
    (tmp_path / "pipelines/ml/dvc.lock").write_text("stages: [unclosed\n")

    assert changed_since(tmp_path, validated)


def test_a_workspace_too_large_to_walk_cheaply_counts_as_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    validated = workspace(tmp_path)
    monkeypatch.setattr(workspace_changes, "MAX_ENTRIES", 3)

    assert changed_since(tmp_path, validated)
