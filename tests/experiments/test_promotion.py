"""Promoting and removing experiments in the workspace on the real stack: branchExperiment, removeExperiments.

DVC is the oracle: ``dvc exp branch`` run by hand on a copy of the workspace makes the branch the service must make;
``dvc exp show --json`` there no longer lists removed experiments.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bson import ObjectId

from tests.api.pipeline_fixtures import write_file
from tests.api.run_helpers import execute, finished
from tests.conftest import GraphQLClient, MakeUser, workspace_of
from tests.experiments.fixtures import (
    EXPERIMENTS,
    PARAMS,
    dvc_experiments,
    experiment_finished,
    experiment_project,
    get_experiment,
    git,
    prepared_pipeline,
    run_experiment,
    user_files,
    worktrees,
)
from tests.results.fixtures import copy_workspace
from tests.stack import Stack
from tests.waiting import eventually

MakeProject = Callable[..., Awaitable[dict[str, Any]]]

BRANCH_EXPERIMENT = """
mutation($id: ID!, $branch: String!) {
  branchExperiment(id: $id, branch: $branch) {
    __typename
    ... on ExperimentBranched { branch sha experiment { id name expRev } }
    ... on Error { message }
    ... on ValidationError { issues { path message } }
  }
}
"""

REMOVE_EXPERIMENTS = """
mutation($ids: [ID!]!) {
  removeExperiments(ids: $ids) {
    __typename
    ... on ExperimentsRemoved { ids names }
    ... on Error { message }
    ... on ValidationError { issues { path message } }
  }
}
"""


async def remove_experiments(gql: GraphQLClient, ids: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = (await gql.execute(REMOVE_EXPERIMENTS, {"ids": ids}))["removeExperiments"]
    return result


def exp_refs(root: Path) -> list[str]:
    """The experiments' refs (not DVC's executor bookkeeping under refs/exps/exec, which ``dvc exp save`` leaves)."""
    listed = git(root, "for-each-ref", "--format=%(refname)", "refs/exps").split()
    return sorted(ref for ref in listed if not ref.startswith("refs/exps/exec/"))


async def branch_experiment(gql: GraphQLClient, experiment_id: str, branch: str) -> dict[str, Any]:
    result: dict[str, Any] = (await gql.execute(BRANCH_EXPERIMENT, {"id": experiment_id, "branch": branch}))[
        "branchExperiment"
    ]
    return result


def dvc(root: Path, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def branches(root: Path) -> list[str]:
    return sorted(git(root, "branch", "--list", "--format=%(refname:short)").split())


async def no_copies_left(workspace: Path, *, seconds: float = 30) -> None:
    """An experiment is shown ended a moment before its copy (a git worktree of the workspace) is removed; a copy of
    the workspace for DVC's CLI is taken once they are gone."""
    await eventually(lambda: worktrees(workspace) == [str(workspace)], seconds=seconds, what="copies unregistered")


async def succeeded_experiment(gql: GraphQLClient, pipeline_id: str, name: str, lr: str) -> dict[str, Any]:
    queued = await run_experiment(gql, pipeline_id, set=[{"key": "train.lr", "value": lr}], name=name)
    assert queued["__typename"] == "ExperimentQueued", queued
    experiment = await experiment_finished(gql, queued["experiment"]["id"])
    assert experiment["state"] == "SUCCEEDED", (experiment["error"], experiment["run"])
    return experiment


async def test_a_saved_experiment_becomes_the_branch_dvc_exp_branch_makes(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, tmp_path: Path
) -> None:
    project_id, pipeline_id = await prepared_pipeline(gql, make_project)
    workspace = workspace_of(stack, project_id)
    experiment = await succeeded_experiment(gql, pipeline_id, "lr-high", "0.1")
    files_before = user_files(workspace)
    status_before = git(workspace, "status", "--porcelain")
    head_before = git(workspace, "symbolic-ref", "HEAD").strip(), git(workspace, "rev-parse", "HEAD").strip()
    branches_before = branches(workspace)

    # DVC's own command, by hand on a copy of the workspace.
    await no_copies_left(workspace)
    oracle = copy_workspace(workspace, tmp_path)
    dvc(oracle, "exp", "branch", "lr-high", "by-dvc")

    made = await branch_experiment(gql, experiment["id"], "best/lr-high")
    assert made["__typename"] == "ExperimentBranched", made
    assert made["branch"] == "best/lr-high" and made["experiment"]["id"] == experiment["id"]
    assert branches(workspace) == sorted([*branches_before, "best/lr-high"])
    assert made["sha"] == git(workspace, "rev-parse", "refs/heads/best/lr-high").strip()
    assert made["sha"] == experiment["expRev"] == git(oracle, "rev-parse", "refs/heads/by-dvc").strip()
    for file in ("params.yaml", "metrics.json"):
        assert git(workspace, "show", f"best/lr-high:{file}") == git(oracle, "show", f"by-dvc:{file}")
    assert "lr: 0.1" in git(workspace, "show", "best/lr-high:params.yaml")

    # The workspace's files and checkout are as they were.
    assert user_files(workspace) == files_before
    assert git(workspace, "status", "--porcelain") == status_before
    assert (git(workspace, "symbolic-ref", "HEAD").strip(), git(workspace, "rev-parse", "HEAD").strip()) == head_before


BAD_BRANCH_NAMES = ["two..dots", "with space", "@{-1}", "-starts-with-dash", "ends.lock", "trailing/", ""]


async def test_a_branch_name_git_refuses_is_a_validation_error_and_makes_nothing(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    project_id, pipeline_id = await prepared_pipeline(gql, make_project)
    workspace = workspace_of(stack, project_id)
    experiment = await succeeded_experiment(gql, pipeline_id, "named", "0.2")
    refs_before = git(workspace, "for-each-ref")

    for branch in BAD_BRANCH_NAMES:
        refused = await branch_experiment(gql, experiment["id"], branch)
        assert refused["__typename"] == "ValidationError", (branch, refused)
        assert [i["path"] for i in refused["issues"]] == ["branch"], refused
    assert git(workspace, "for-each-ref") == refs_before


async def test_branching_is_refused_for_a_taken_name_an_unsaved_or_unknown_experiment_and_a_stranger(
    gql: GraphQLClient, make_project: MakeProject, make_user: MakeUser, stack: Stack
) -> None:
    project_id, pipeline_id = await prepared_pipeline(gql, make_project)
    workspace = workspace_of(stack, project_id)
    experiment = await succeeded_experiment(gql, pipeline_id, "first", "0.3")
    assert (await branch_experiment(gql, experiment["id"], "taken"))["__typename"] == "ExperimentBranched"
    taken_sha = git(workspace, "rev-parse", "refs/heads/taken").strip()
    current = git(workspace, "branch", "--show-current").strip()
    queued = await run_experiment(gql, pipeline_id, set=[{"key": "train.lr", "value": "5"}], name="too-large")
    failed = await experiment_finished(gql, queued["experiment"]["id"])
    assert failed["state"] == "FAILED", failed
    refs_before = git(workspace, "for-each-ref")

    again = await branch_experiment(gql, experiment["id"], "taken")
    assert again["__typename"] == "ConflictError" and "taken" in again["message"], again
    # The workspace's own checked-out branch is taken too.
    assert (await branch_experiment(gql, experiment["id"], current))["__typename"] == "ConflictError"

    unsaved = await branch_experiment(gql, failed["id"], "from-failed")
    assert unsaved["__typename"] == "ConflictError" and "failed" in unsaved["message"], unsaved

    assert (await branch_experiment(gql, str(ObjectId()), "unknown"))["__typename"] == "NotFoundError"
    assert (await branch_experiment(gql, "not-an-id", "unknown"))["__typename"] == "NotFoundError"
    stranger = await make_user()
    hidden = await branch_experiment(stranger, experiment["id"], "stranger")
    assert hidden["__typename"] == "NotFoundError", hidden

    assert git(workspace, "for-each-ref") == refs_before
    assert git(workspace, "rev-parse", "refs/heads/taken").strip() == taken_sha


async def test_removed_experiments_leave_dvc_and_the_service_and_the_rest_stay(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, tmp_path: Path
) -> None:
    project_id, pipeline_id = await prepared_pipeline(gql, make_project)
    workspace = workspace_of(stack, project_id)
    gone = [
        await succeeded_experiment(gql, pipeline_id, name, lr) for name, lr in (("gone-a", "0.4"), ("gone-b", "0.6"))
    ]
    kept = await succeeded_experiment(gql, pipeline_id, "kept", "0.7")
    queued = await run_experiment(gql, pipeline_id, set=[{"key": "train.lr", "value": "9"}], name="failed-one")
    failed = await experiment_finished(gql, queued["experiment"]["id"])
    assert failed["state"] == "FAILED" and failed["expRef"] is None, failed
    await no_copies_left(workspace)
    assert set(dvc_experiments(workspace, tmp_path / "before")) == {"gone-a", "gone-b", "kept"}
    files_before = user_files(workspace)

    ids = [gone[0]["id"], gone[1]["id"], failed["id"]]
    removed = await remove_experiments(gql, ids)
    assert removed == {"__typename": "ExperimentsRemoved", "ids": ids, "names": ["gone-a", "gone-b", "failed-one"]}

    # DVC's own listing, by hand in a copy of the workspace: only the kept one.
    assert set(dvc_experiments(workspace, tmp_path / "after")) == {"kept"}
    assert exp_refs(workspace) == [kept["expRef"]]
    for experiment_id in ids:
        assert (await get_experiment(gql, experiment_id))["__typename"] == "NotFoundError"
    page = (await gql.execute(EXPERIMENTS, {"p": pipeline_id}))["experiments"]
    assert [e["node"]["name"] for e in page["edges"]] == ["kept"]
    assert user_files(workspace) == files_before


async def test_removal_is_all_or_nothing_for_unknown_unended_or_strangers_experiments(
    gql: GraphQLClient, make_project: MakeProject, make_user: MakeUser, stack: Stack
) -> None:
    project_id, pipeline_id = await prepared_pipeline(gql, make_project)
    workspace = workspace_of(stack, project_id)
    saved = await succeeded_experiment(gql, pipeline_id, "saved", "0.5")
    refs_before = exp_refs(workspace)
    assert refs_before == [saved["expRef"]]

    unknown = await remove_experiments(gql, [saved["id"], str(ObjectId())])
    assert unknown["__typename"] == "NotFoundError", unknown
    for bad in ([], [saved["id"], saved["id"]]):
        refused = await remove_experiments(gql, bad)
        assert refused["__typename"] == "ValidationError" and refused["issues"][0]["path"] == "ids", refused
    stranger = await make_user()
    assert (await remove_experiments(stranger, [saved["id"]]))["__typename"] == "NotFoundError"

    slow = await run_experiment(
        gql, pipeline_id, set=[{"key": "train.lr", "value": "0.8"}, {"key": "pause", "value": "4"}], name="slow"
    )
    assert slow["__typename"] == "ExperimentQueued", slow
    unended = await remove_experiments(gql, [saved["id"], slow["experiment"]["id"]])
    assert unended["__typename"] == "ConflictError" and "slow" in unended["message"], unended

    assert exp_refs(workspace) == refs_before
    assert (await get_experiment(gql, saved["id"]))["state"] == "SUCCEEDED"
    assert (await experiment_finished(gql, slow["experiment"]["id"]))["state"] == "SUCCEEDED"


APPLY_EXPERIMENT = """
mutation($id: ID!, $force: Boolean!) {
  applyExperiment(id: $id, force: $force) {
    __typename
    ... on ExperimentApplied { changedFiles experiment { id name } }
    ... on Error { message }
  }
}
"""


async def apply_experiment(gql: GraphQLClient, experiment_id: str, *, force: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = (await gql.execute(APPLY_EXPERIMENT, {"id": experiment_id, "force": force}))[
        "applyExperiment"
    ]
    return result


COMMIT_RUN = """
mutation($id: ID!) { commitRun(runId: $id) { __typename ... on RunCommitted { sha } ... on Error { message } } }
"""


def status(root: Path) -> str:
    return git(root, "status", "--porcelain", "--untracked-files=all")


async def test_applying_writes_into_the_workspace_what_dvc_exp_apply_writes(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, tmp_path: Path
) -> None:
    project_id, pipeline_id = await prepared_pipeline(gql, make_project)
    workspace = workspace_of(stack, project_id)
    experiment = await succeeded_experiment(gql, pipeline_id, "lr-high", "0.1")
    await no_copies_left(workspace)
    head_before = git(workspace, "symbolic-ref", "HEAD"), git(workspace, "rev-parse", "HEAD")
    # The service's files are all untracked here: nothing tracked would be overwritten, so no force is needed.
    assert git(workspace, "status", "--porcelain", "--untracked-files=no") == ""

    oracle = copy_workspace(workspace, tmp_path)
    dvc(oracle, "exp", "apply", "lr-high")

    applied = await apply_experiment(gql, experiment["id"])
    assert applied["__typename"] == "ExperimentApplied", applied
    assert applied["experiment"]["id"] == experiment["id"]
    assert user_files(workspace) == user_files(oracle)
    assert status(workspace) == status(oracle)
    assert "lr: 0.1" in (workspace / "params.yaml").read_text()
    assert (workspace / "model.txt").read_text().splitlines()[0] == "0.1"  # the experiment's output, from the cache
    assert '"score": 1.0' in (workspace / "metrics.json").read_text()
    assert (git(workspace, "symbolic-ref", "HEAD"), git(workspace, "rev-parse", "HEAD")) == head_before


async def test_uncommitted_tracked_changes_refuse_applying_unless_forced(
    gql: GraphQLClient, make_project: MakeProject, make_user: MakeUser, stack: Stack, tmp_path: Path
) -> None:
    project = await make_project()
    workspace = workspace_of(stack, project["id"])
    pipeline_id = await experiment_project(gql, project["id"])
    run = await finished(gql, await execute(gql, pipeline_id))
    assert run["state"] == "SUCCEEDED", run
    committed = (await gql.execute(COMMIT_RUN, {"id": run["id"]}))["commitRun"]
    assert committed["__typename"] == "RunCommitted", committed
    assert "params.yaml" in git(workspace, "ls-files")
    experiment = await succeeded_experiment(gql, pipeline_id, "lr-mid", "0.3")
    queued = await run_experiment(gql, pipeline_id, set=[{"key": "train.lr", "value": "6"}], name="too-large")
    failed = await experiment_finished(gql, queued["experiment"]["id"])
    assert failed["state"] == "FAILED", failed
    await no_copies_left(workspace)
    # An unsaved edit of a tracked file: applying would overwrite it.
    await write_file(gql, project["id"], "params.yaml", PARAMS.replace("lr: 0.01", "lr: 0.02"))
    files_before = user_files(workspace)
    status_before = status(workspace)
    assert " M params.yaml" in status_before.splitlines()

    refused = await apply_experiment(gql, experiment["id"])
    assert refused["__typename"] == "ConflictError" and "params.yaml" in refused["message"], refused
    unsaved = await apply_experiment(gql, failed["id"], force=True)
    assert unsaved["__typename"] == "ConflictError" and "failed" in unsaved["message"], unsaved
    stranger = await make_user()
    assert (await apply_experiment(stranger, experiment["id"], force=True))["__typename"] == "NotFoundError"
    assert user_files(workspace) == files_before and status(workspace) == status_before

    oracle = copy_workspace(workspace, tmp_path)
    dvc(oracle, "exp", "apply", "lr-mid")
    forced = await apply_experiment(gql, experiment["id"], force=True)
    assert forced["__typename"] == "ExperimentApplied", forced
    assert "params.yaml" in forced["changedFiles"]
    assert user_files(workspace) == user_files(oracle)
    assert status(workspace) == status(oracle)
    assert "lr: 0.3" in (workspace / "params.yaml").read_text()

    assert (await apply_experiment(gql, str(ObjectId()), force=True))["__typename"] == "NotFoundError"
