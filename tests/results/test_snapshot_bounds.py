"""A snapshot stays bounded: past its limits it is cut and says so; symlinks out of the workspace are not read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from app.domain.results import MAX_ENTRIES, ResultEntry, ResultKind, ResultsSnapshot, compare
from workers.dvcops.results import read_results


def workspace(tmp_path: Path, dvc_yaml: str) -> Path:
    root = tmp_path / "ws"
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True)
    (root / "dvc.yaml").write_text(dvc_yaml)
    return root


def test_too_many_entries_and_too_large_values_are_cut_with_a_marker(tmp_path: Path) -> None:
    root = workspace(tmp_path, "metrics:\n  - big.json\n  - huge.json\n")
    (root / "big.json").write_text(json.dumps({f"m{i:05}": i for i in range(MAX_ENTRIES + 500)}))
    (root / "huge.json").write_text(json.dumps({"note": "x" * 10_000, "ok": 1}))

    snapshot = read_results(root)

    assert len(snapshot.metrics) == MAX_ENTRIES
    markers = snapshot.truncation_of(ResultKind.METRICS)
    assert markers == [f"metrics: {MAX_ENTRIES + 502} entries, only the first {MAX_ENTRIES} were kept"]
    small = workspace(tmp_path / "small", "metrics:\n  - huge.json\n")
    (small / "huge.json").write_text(json.dumps({"note": "x" * 10_000, "ok": 1}))
    kept = read_results(small)
    assert [(e.key, e.value) for e in kept.metrics] == [("note", None), ("ok", 1)]
    assert kept.truncation_of(ResultKind.METRICS) == ["metrics: huge.json:note: a value of 10002 bytes was not kept"]
    assert snapshot.errors == []


def test_a_metrics_file_linked_out_of_the_workspace_is_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"password": 1234}))
    root = workspace(tmp_path, "metrics:\n  - leak.json\n  - fine.json\n")
    (root / "leak.json").symlink_to(secret)
    (root / "fine.json").write_text(json.dumps({"a": 1}))

    snapshot = read_results(root)

    assert [(e.file, e.key) for e in snapshot.metrics] == [("fine.json", "a")]
    assert [(e.file, "outside" in e.message) for e in snapshot.errors] == [("leak.json", True)]


def test_compare_takes_deltas_against_the_baseline_for_numbers_only() -> None:
    def snap(lr: float, name: str) -> ResultsSnapshot:
        return ResultsSnapshot(
            params=[ResultEntry("params.yaml", "lr", json.dumps(lr), lr), ResultEntry("params.yaml", "n", f'"{name}"')],
            metrics=[ResultEntry("m.json", "auc", json.dumps(lr * 2), lr * 2)],
        )

    table = compare({"a": snap(0.1, "x"), "b": snap(0.3, "y"), "c": None}, ["b", "a", "c"], "a")

    assert [(c.kind.value, c.key) for c in table.columns] == [("params", "lr"), ("params", "n"), ("metrics", "auc")]
    b, a, c = table.rows
    assert [cell.delta for cell in a.cells] == [0.0, None, 0.0]
    assert b.cells[0].delta is not None and abs(b.cells[0].delta - 0.2) < 1e-9 and b.cells[1].delta is None
    assert not c.has_results and all(cell.value_json is None for cell in c.cells)


def test_plot_data_linked_out_of_the_workspace_is_not_rendered(tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps([{"step": 1, "password": 1234}]))
    root = workspace(tmp_path, "plots:\n  - leak.json\n  - fine.json\n")
    (root / "leak.json").symlink_to(secret)
    (root / "fine.json").write_text(json.dumps([{"step": 1, "loss": 0.5}]))

    snapshot = read_results(root)

    assert [p.id for p in snapshot.plots] == ["fine.json"]
    assert "1234" not in "".join(p.content_json or "" for p in snapshot.plots)
    assert [(e.file, "outside" in e.message) for e in snapshot.errors] == [("leak.json", True)]


def test_dvc_reading_and_diffing_revisions_runs_nothing_from_the_repository(tmp_path: Path) -> None:
    from workers.dvcops.results import diff_revisions

    marks = tmp_path / "marks"
    marks.mkdir()
    root = workspace(tmp_path, "metrics:\n  - m.json\n")
    (root / "m.json").write_text(json.dumps({"auc": 0.5}))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "--all"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "one"], cwd=root, check=True)
    for hook in ("post-checkout", "post-index-change", "reference-transaction"):
        (root / ".git" / "hooks" / hook).write_text(f"#!/bin/sh\ntouch {marks}/{hook}\n")
        (root / ".git" / "hooks" / hook).chmod(0o755)
    monitor = tmp_path / "monitor.sh"
    monitor.write_text(f"#!/bin/sh\ntouch {marks}/fsmonitor\n")
    monitor.chmod(0o755)
    subprocess.run(["git", "config", "core.fsmonitor", str(monitor)], cwd=root, check=True)
    (root / "m.json").write_text(json.dumps({"auc": 0.75}))

    shown = read_results(root)
    diff = diff_revisions(root, ResultKind.METRICS, "HEAD", "workspace")

    assert [(e.key, e.value) for e in shown.metrics] == [("auc", 0.75)]
    assert [(d.key, d.old_json, d.new_json, d.delta) for d in diff.entries] == [("auc", "0.5", "0.75", 0.25)]
    assert list(marks.iterdir()) == []
    subprocess.run(["git", "status"], cwd=root, check=True, capture_output=True)  # the trap is live for plain git
    assert "fsmonitor" in {p.name for p in marks.iterdir()}


def test_a_workspace_declaring_no_results_is_answered_without_dvc_as_dvc_answers(tmp_path: Path) -> None:
    from workers.dvcops.results import declares_results, read_with_dvc

    chain = "stages:\n  a:\n    cmd: cp in.txt a.txt\n    deps: [in.txt]\n    outs: [a.txt]\n"
    root = workspace(tmp_path, chain)
    (root / "in.txt").write_text("x\n")
    (root / "other.yaml").write_text("lr: 0.1\n")
    assert not declares_results(root)
    shown = json.loads(
        subprocess.run(
            [sys.executable, "-m", "dvc", "metrics", "show", "--json"], cwd=root, capture_output=True, text=True
        ).stdout
        or "{}"
    )
    assert all(not revision.get("data") for revision in shown.values()), shown
    assert read_results(root) == ResultsSnapshot() == read_with_dvc(root)
    (root / "params.yaml").write_text("lr: 0.1\n")  # DVC shows its default params file even when no stage reads it
    assert declares_results(root) and [e.key for e in read_results(root).params] == ["lr"]

    looped = "stages:\n  s:\n    foreach: [1, 2]\n    do:\n      cmd: echo ${item}\n      metrics: [m${item}.json]\n"
    (root / "sub").mkdir()
    (root / "sub" / "dvc.yaml").write_text(looped)
    assert declares_results(root)
