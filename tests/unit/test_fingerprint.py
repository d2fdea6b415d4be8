"""Fingerprints: which files count, and when their stats can be trusted."""

from __future__ import annotations

from pathlib import Path

from workers.dvcops.fingerprint import Fingerprint, take_fingerprint


def names(fingerprint: Fingerprint) -> set[str]:
    return {path for path, *_ in fingerprint.files}


def workspace(tmp_path: Path) -> Path:
    for path, text in {
        "dvc.yaml": "stages: {}\n",
        "sub/dvc.yaml": "stages: {}\n",
        "sub/dvc.lock": "schema: '2.0'\n",
        "data.csv.dvc": "outs: []\n",
        ".dvcignore": "",
        "sub/.gitignore": "",
        "params.yaml": "lr: 1\n",
        "data/a.csv": "1\n",
        ".dvc/config": "",
        ".dvc/tmp/lock": "",
        ".git/HEAD": "",
    }.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return tmp_path


def test_files_dvc_builds_its_index_from(tmp_path: Path) -> None:
    assert names(take_fingerprint(workspace(tmp_path))) == {
        "dvc.yaml", "sub/dvc.yaml", "sub/dvc.lock", "data.csv.dvc", ".dvcignore", "sub/.gitignore", ".dvc/config",
    }  # fmt: skip


def test_interpolation_makes_every_workspace_file_count(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    (root / "sub/dvc.yaml").write_text("stages:\n  a:\n    cmd: echo ${lr}\n")

    assert {"params.yaml", "data/a.csv", "dvc.yaml"} <= names(take_fingerprint(root))
    assert not any(name.startswith((".git/", ".dvc/tmp")) for name in names(take_fingerprint(root)))


def test_equal_when_nothing_changed_and_different_after_a_rewrite(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    first = take_fingerprint(root)
    assert take_fingerprint(root) == first

    (root / "sub/dvc.lock").write_text("schema: '2.0'\nstages: {}\n")

    assert take_fingerprint(root) != first


def test_settled_only_when_every_file_is_older_than_the_margin() -> None:
    second = 1_000_000_000
    fingerprint = Fingerprint(frozenset({("dvc.yaml", 1, 10, 5 * second, 5 * second)}), taken_ns=8 * second)

    assert fingerprint.settled(2.0)
    assert not fingerprint.settled(3.0)
