"""A `.dvc/tmp/rwlock` that a killed DVC process left empty or half written is repaired before DVC work; a valid one,
or one whose workspace a live DVC process holds, is left alone. DVC's CLI is the oracle for "bricked" and "repaired"."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CHAIN, run_dvc

from workers.dvcops import WarmRepos, pipeline_status
from workers.dvcops.dvc_internals import dvc_version_checked
from workers.dvcops.repo import open_repo
from workers.dvcops.rwlock_file import rwlock_problem

# What DVC writes while one `dvc repro` stage holds its locks (dvc/rwlock.py), cut in the middle as a kill leaves it.
LIVE_DOCUMENT = json.dumps(
    {
        "read": {"/ws/data.csv": [{"pid": 4242, "cmd": "dvc repro"}]},
        "write": {"/ws/prepared.csv": {"pid": 4242, "cmd": "dvc repro"}},
    }
)
BROKEN = {"empty": "", "half a JSON document": LIVE_DOCUMENT[: len(LIVE_DOCUMENT) // 2]}


def rwlock_of(root: Path) -> Path:
    return root / ".dvc" / "tmp" / "rwlock"


def dvc_status(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dvc", "status", CHAIN], cwd=root, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("content", list(BROKEN.values()), ids=list(BROKEN))
def test_a_broken_rwlock_bricks_dvc_and_is_repaired_before_status(
    ran_chain: Path, tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    rwlock_of(ran_chain).write_text(content)
    copy = tmp_path / "oracle"
    shutil.copytree(ran_chain, copy, symlinks=True)

    refused = dvc_status(copy)  # DVC itself, before any repair
    assert refused.returncode != 0
    assert "RWLock-file" in refused.stdout + refused.stderr and "corrupted" in refused.stdout + refused.stderr

    statuses = pipeline_status(ran_chain, CHAIN)

    assert [(s.name, s.up_to_date) for s in statuses] == [("prepare", True), ("train", True), ("evaluate", True)]
    assert rwlock_problem(rwlock_of(ran_chain)) is None
    json.loads(rwlock_of(ran_chain).read_text())
    assert "Data and pipelines are up to date." in run_dvc(ran_chain, "status", CHAIN)
    repaired = [r for r in caplog.records if r.name == "workers.dvcops.rwlock_file" and r.levelno == logging.WARNING]
    assert len(repaired) == 1 and f"project {ran_chain.name}:" in repaired[0].getMessage()


def test_a_rwlock_of_another_shape_is_repaired(ran_chain: Path) -> None:
    rwlock_of(ran_chain).write_text('{"read": "everything"}')
    assert dvc_status(ran_chain).returncode != 0  # RWLockFileFormatError

    with open_repo(ran_chain):
        pass

    assert rwlock_problem(rwlock_of(ran_chain)) is None
    run_dvc(ran_chain, "status", CHAIN)


def test_a_valid_rwlock_with_a_live_entry_is_left_untouched(ran_chain: Path) -> None:
    # A live process (this one) reads a path no stage of the chain touches: DVC keeps such an entry.
    live = {"read": {str(ran_chain / "elsewhere.txt"): [{"pid": os.getpid(), "cmd": "dvc repro other"}]}}
    text = json.dumps(live)
    rwlock_of(ran_chain).write_text(text)

    with open_repo(ran_chain):
        assert rwlock_of(ran_chain).read_text() == text
    statuses = pipeline_status(ran_chain, CHAIN)

    assert all(s.up_to_date for s in statuses)
    # DVC rewrote it around the status's read lock (adding an empty "write"), and kept the live entry.
    assert json.loads(rwlock_of(ran_chain).read_text())["read"] == live["read"]


def test_a_broken_rwlock_is_left_while_a_live_dvc_process_holds_the_repository_lock(ran_chain: Path) -> None:
    rwlock_of(ran_chain).write_text("")
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from dvc.repo import Repo; r = Repo(sys.argv[1]); r.lock.lock(); print('held', flush=True);"
            " sys.stdin.read()",
            str(ran_chain),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdin is not None and holder.stdout is not None
        try:
            assert holder.stdout.readline().strip() == "held"
            with open_repo(ran_chain):  # DVC's own retries for its lock (3 s), then the repair gives up
                pass
            assert rwlock_of(ran_chain).read_text() == ""
        finally:
            holder.stdin.close()
            holder.wait(timeout=30)

    with open_repo(ran_chain):
        pass
    assert rwlock_problem(rwlock_of(ran_chain)) is None


def test_the_repair_is_checked_for_dvc_3_only() -> None:
    assert dvc_version_checked("3.67.1")
    assert not dvc_version_checked("4.0.0")
    assert not dvc_version_checked("dev")


def test_a_warm_repo_reused_after_the_rwlock_broke_repairs_it(ran_chain: Path) -> None:
    repos = WarmRepos(settle_seconds=0)
    try:
        pipeline_status(ran_chain, CHAIN, repos)  # the workspace's Repo stays open, its index built
        rwlock_of(ran_chain).write_text(BROKEN["half a JSON document"])

        statuses = pipeline_status(ran_chain, CHAIN, repos)
    finally:
        repos.close()

    assert all(s.up_to_date for s in statuses)
    assert rwlock_problem(rwlock_of(ran_chain)) is None
