"""WarmRepos: a workspace's Repo is reused only while what DVC's index is built from is unchanged."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import CHAIN, chain_stages, run_dvc

from app.domain.errors import InvalidInput
from app.domain.pipelines import ChangeKind, StageChange
from workers.dvcops import WarmRepos, dry_run_plan, pipeline_status, write_pipeline


@pytest.fixture
def repos() -> Iterator[WarmRepos]:
    # No settling margin: the tests change files right after a status and expect it to be seen.
    warm = WarmRepos(settle_seconds=0)
    yield warm
    warm.close()


def repo_of(repos: WarmRepos, root: Path) -> object:
    with repos.locked(root) as opened:
        return opened.repo


def changes_by_stage(root: Path, repos: WarmRepos) -> dict[str, list[StageChange]]:
    return {s.name: s.changes for s in pipeline_status(root, CHAIN, repos)}


def test_reused_while_nothing_changed_and_answers_as_a_fresh_repo(ran_chain: Path, repos: WarmRepos) -> None:
    assert pipeline_status(ran_chain, CHAIN, repos) == pipeline_status(ran_chain, CHAIN)
    assert repo_of(repos, ran_chain) is repo_of(repos, ran_chain)
    plan = dry_run_plan(ran_chain, CHAIN, force=True, targets=["train"], downstream=True, repos=repos)
    assert plan == dry_run_plan(ran_chain, CHAIN, force=True, targets=["train"], downstream=True)


def test_dependency_change_is_seen_by_the_reused_repo(ran_chain: Path, repos: WarmRepos) -> None:
    pipeline_status(ran_chain, CHAIN, repos)
    before = repo_of(repos, ran_chain)
    (ran_chain / "data.csv").write_text("x,y\n1,3\n")

    changes = changes_by_stage(ran_chain, repos)

    assert changes["prepare"] == [StageChange(kind=ChangeKind.DEP, path="data.csv", state="modified")]
    assert repo_of(repos, ran_chain) is before  # hashing is redone on every call; the index stays valid


def test_pipeline_update_replaces_the_repo(ran_chain: Path, repos: WarmRepos) -> None:
    before = repo_of(repos, ran_chain)
    stages = chain_stages()
    stages[1] = dataclasses.replace(stages[1], cmd="cat prepared.csv prepared.csv > model.txt")
    write_pipeline(ran_chain, CHAIN, stages)

    assert changes_by_stage(ran_chain, repos)["train"] == [StageChange(kind=ChangeKind.COMMAND)]
    assert repo_of(repos, ran_chain) is not before


def test_run_brings_the_status_up_to_date(ran_chain: Path, repos: WarmRepos) -> None:
    (ran_chain / "data.csv").write_text("x,y\n1,3\n")
    assert changes_by_stage(ran_chain, repos)["prepare"] != []

    run_dvc(ran_chain, "repro", CHAIN)  # another process rewrites dvc.lock

    assert all(s.up_to_date for s in pipeline_status(ran_chain, CHAIN, repos))


def test_interpolated_values_file_change_is_seen(make_workspace: Callable[[], Path], repos: WarmRepos) -> None:
    root = make_workspace()
    (root / "pipelines/templated").mkdir(parents=True)
    pipeline = "pipelines/templated/dvc.yaml"
    (root / pipeline).write_text(
        "vars:\n  - ../../config/train.yaml\nstages:\n  fit:\n    cmd: echo ${lr} > fit.txt\n"
        "    wdir: ../..\n    outs:\n      - fit.txt\n"
    )
    run_dvc(root, "repro", pipeline)
    assert [s.up_to_date for s in pipeline_status(root, pipeline, repos)] == [True]

    # Only the value the command is built from changes: no dvc.yaml or dvc.lock is touched.
    (root / "config/train.yaml").write_text("lr: 0.5\nmodel:\n  depth: 3\n")

    assert pipeline_status(root, pipeline, repos)[0].changes == [StageChange(kind=ChangeKind.COMMAND)]


def test_dvcignore_change_replaces_the_repo(ran_chain: Path, repos: WarmRepos) -> None:
    before = repo_of(repos, ran_chain)
    (ran_chain / ".dvcignore").write_text("# nothing ignored, but DVC reads it\n")

    assert repo_of(repos, ran_chain) is not before


def test_recently_changed_files_are_not_trusted(ran_chain: Path) -> None:
    warm = WarmRepos(settle_seconds=3600)
    try:
        # The copy's files changed (ctime) moments ago: their stats could still change unseen.
        assert repo_of(warm, ran_chain) is not repo_of(warm, ran_chain)
    finally:
        warm.close()


def test_expected_errors_keep_the_repo_and_others_drop_it(ran_chain: Path, repos: WarmRepos) -> None:
    before = repo_of(repos, ran_chain)
    with pytest.raises(InvalidInput):
        dry_run_plan(ran_chain, CHAIN, force=False, targets=["nope"], downstream=False, repos=repos)
    assert repo_of(repos, ran_chain) is before

    with pytest.raises(RuntimeError), repos.locked(ran_chain):
        raise RuntimeError("something unexpected")
    assert repo_of(repos, ran_chain) is not before


def test_cache_removed_under_the_reused_repo_is_seen(ran_chain: Path, repos: WarmRepos) -> None:
    pipeline_status(ran_chain, CHAIN, repos)
    shutil.rmtree(ran_chain / ".dvc" / "cache")

    warm = pipeline_status(ran_chain, CHAIN, repos)

    assert warm == pipeline_status(ran_chain, CHAIN)
    assert StageChange(kind=ChangeKind.OUT, path="model.txt", state="not in cache") in warm[1].changes
