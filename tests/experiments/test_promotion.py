"""Promoting experiments in the workspace on the real stack: branchExperiment.

DVC is the oracle: ``dvc exp branch`` run by hand on a copy of the workspace makes the branch the service must make.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bson import ObjectId

from tests.conftest import GraphQLClient, MakeUser, workspace_of
from tests.experiments.fixtures import experiment_finished, git, prepared_pipeline, run_experiment, user_files
from tests.results.fixtures import copy_workspace
from tests.stack import Stack

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
