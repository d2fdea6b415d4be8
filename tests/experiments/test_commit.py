"""commitExperiment on the real stack: a saved experiment becomes a commit on the workspace's current branch.

The oracle is what DVC's docs tell a user to do to keep an experiment on their branch, by hand on a copy of the
workspace: ``dvc exp apply <name>``, then ``git add`` and ``git commit`` of the files the experiment changed. Both
commits must show the same in ``git show --stat``, have the experiment's tree, and ``dvc exp show`` in the workspace
afterwards must give HEAD the experiment's params and metrics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bson import ObjectId

from tests.api.pipeline_fixtures import write_file
from tests.conftest import GraphQLClient, MakeUser, workspace_of
from tests.experiments.fixtures import PARAMS, experiment_finished, git, prepared_pipeline, run_experiment
from tests.experiments.test_promotion import dvc, no_copies_left, status, succeeded_experiment
from tests.results.fixtures import copy_workspace, dvc_json
from tests.stack import Stack

MakeProject = Callable[..., Awaitable[dict[str, Any]]]

COMMIT_EXPERIMENT = """
mutation($id: ID!, $message: String!, $force: Boolean!) {
  commitExperiment(id: $id, message: $message, force: $force) {
    __typename
    ... on ExperimentCommitted { branch sha files experiment { id name expRev } }
    ... on Error { message }
    ... on ValidationError { issues { path message } }
  }
}
"""


async def commit_experiment(
    gql: GraphQLClient, experiment_id: str, message: str, *, force: bool = False
) -> dict[str, Any]:
    variables = {"id": experiment_id, "message": message, "force": force}
    result: dict[str, Any] = (await gql.execute(COMMIT_EXPERIMENT, variables))["commitExperiment"]
    return result


def show_stat(root: Path, rev: str) -> str:
    """``git show --stat`` without what differs between two commits of the same change (sha, dates)."""
    return git(root, "show", "--stat", "--format=%an <%ae>%n%s%n%b", rev)


def head_data(root: Path, tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``dvc exp show --json`` in a copy: the workspace's row and HEAD's row (params and metrics)."""
    shown = dvc_json(copy_workspace(root, tmp_path), "exp", "show")
    by_rev = {row["rev"]: row["data"] for row in shown}
    workspace = by_rev.pop("workspace")
    (head,) = by_rev.values()
    return workspace, head


async def test_a_saved_experiment_becomes_the_commit_dvc_exp_apply_and_git_commit_make(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, tmp_path: Path
) -> None:
    project_id, pipeline_id = await prepared_pipeline(gql, make_project)
    workspace = workspace_of(stack, project_id)
    experiment = await succeeded_experiment(gql, pipeline_id, "lr-high", "0.1")
    await no_copies_left(workspace)
    branch = git(workspace, "branch", "--show-current").strip()
    head_before = git(workspace, "rev-parse", "HEAD").strip()
    # What the experiment changed against its base, but DVC's packed arguments (which it commits for itself).
    listed = git(
        workspace, "diff-tree", "-r", "--name-only", "--no-commit-id", f"{experiment['expRev']}^", experiment["expRev"]
    )
    changed = sorted(path for path in listed.split() if not path.startswith(".dvc/tmp/"))
    assert "params.yaml" in changed and ".dvc/tmp/repro.dat" in listed.split(), listed

    # By hand, as DVC's docs say, on a copy of the workspace, authored as the service authors it.
    oracle = copy_workspace(workspace, tmp_path / "oracle")
    dvc(oracle, "exp", "apply", "lr-high")
    git(oracle, "add", "--all")
    email = f"{gql.name}@users.dvc-pipelines.invalid"
    git(oracle, "-c", f"user.name={gql.name}", "-c", f"user.email={email}", "commit", "-q", "-m", "Keep lr 0.1")

    made = await commit_experiment(gql, experiment["id"], "Keep lr 0.1")
    assert made["__typename"] == "ExperimentCommitted", made
    assert made["branch"] == branch and made["experiment"]["id"] == experiment["id"]
    assert sorted(made["files"]) == changed

    # git's view: one new commit on the branch, on top of the old HEAD, the oracle's tree, the user's name.
    assert git(workspace, "rev-parse", f"refs/heads/{branch}").strip() == made["sha"]
    assert git(workspace, "log", "--format=%H %P", "-n2", branch).split() == [made["sha"], head_before, head_before]
    assert git(workspace, "rev-parse", f"{made['sha']}^{{tree}}") == git(oracle, "rev-parse", "HEAD^{tree}")
    assert git(workspace, "diff", "--name-only", experiment["expRev"], made["sha"]).split() == [".dvc/tmp/repro.dat"]
    assert show_stat(workspace, made["sha"]) == show_stat(oracle, "HEAD")
    assert (
        git(workspace, "log", "-n1", "--format=%an|%ae|%cn|%ce|%s")
        == f"{gql.name}|{email}|{gql.name}|{email}|Keep lr 0.1\n"
    )
    # Nothing the experiment changed is left uncommitted; the working tree is the oracle's.
    assert status(workspace) == status(oracle)
    assert not [line for line in status(workspace).splitlines() if line[3:] in changed]
    assert "lr: 0.1" in (workspace / "params.yaml").read_text()
    assert (workspace / "model.txt").read_text().splitlines()[0] == "0.1"  # the experiment's output, from the cache

    # DVC's view in the workspace: HEAD has the experiment's params and metrics, and the working tree is HEAD.
    now, head = head_data(workspace, tmp_path / "after")
    params = head["params"]["params.yaml"]["data"]
    assert params["train"]["lr"] == 0.1
    assert head["metrics"]["metrics.json"]["data"] == {"score": 1.0}
    assert now["params"] == head["params"] and now["metrics"] == head["metrics"]
    assert dvc_json(copy_workspace(workspace, tmp_path / "diff"), "params", "diff") == {}


async def test_committing_is_refused_when_the_branch_moved_on_for_unsaved_changes_and_bad_asks(
    gql: GraphQLClient, make_project: MakeProject, make_user: MakeUser, stack: Stack
) -> None:
    project_id, pipeline_id = await prepared_pipeline(gql, make_project)
    workspace = workspace_of(stack, project_id)
    first = await succeeded_experiment(gql, pipeline_id, "first", "0.2")
    second = await succeeded_experiment(gql, pipeline_id, "second", "0.3")
    queued = await run_experiment(gql, pipeline_id, set=[{"key": "train.lr", "value": "7"}], name="too-large")
    failed = await experiment_finished(gql, queued["experiment"]["id"])
    assert failed["state"] == "FAILED", failed
    await no_copies_left(workspace)

    refs_before, status_before = git(workspace, "for-each-ref"), status(workspace)
    empty = await commit_experiment(gql, first["id"], "  ")
    assert empty["__typename"] == "ValidationError" and empty["issues"][0]["path"] == "message", empty
    unsaved = await commit_experiment(gql, failed["id"], "keep it")
    assert unsaved["__typename"] == "ConflictError" and "failed" in unsaved["message"], unsaved
    assert (await commit_experiment(gql, str(ObjectId()), "keep it"))["__typename"] == "NotFoundError"
    stranger = await make_user()
    assert (await commit_experiment(stranger, first["id"], "keep it"))["__typename"] == "NotFoundError"
    assert git(workspace, "for-each-ref") == refs_before and status(workspace) == status_before

    assert (await commit_experiment(gql, first["id"], "keep first"))["__typename"] == "ExperimentCommitted"
    # The second has the same base, which is no longer the branch's HEAD: committing it would undo the first.
    refs_between, status_between = git(workspace, "for-each-ref"), status(workspace)
    moved = await commit_experiment(gql, second["id"], "keep second", force=True)
    assert moved["__typename"] == "ConflictError" and "moved on" in moved["message"], moved
    assert git(workspace, "for-each-ref") == refs_between and status(workspace) == status_between

    # On the new HEAD: an unsaved edit of a tracked file refuses the commit unless forced.
    third = await succeeded_experiment(gql, pipeline_id, "third", "0.4")
    await no_copies_left(workspace)
    await write_file(gql, project_id, "params.yaml", PARAMS.replace("lr: 0.01", "lr: 0.05"))
    edited = status(workspace)
    assert " M params.yaml" in edited.splitlines(), edited
    head = git(workspace, "rev-parse", "HEAD")
    refused = await commit_experiment(gql, third["id"], "keep third")
    assert refused["__typename"] == "ConflictError" and "params.yaml" in refused["message"], refused
    assert git(workspace, "rev-parse", "HEAD") == head and status(workspace) == edited

    forced = await commit_experiment(gql, third["id"], "keep third", force=True)
    assert forced["__typename"] == "ExperimentCommitted", forced
    assert git(workspace, "log", "--format=%s", "-n2").splitlines() == ["keep third", "keep first"]
    assert git(workspace, "diff", "--name-only", third["expRev"], forced["sha"]).split() == [".dvc/tmp/repro.dat"]
    assert "lr: 0.4" in git(workspace, "show", "HEAD:params.yaml")
    assert "params.yaml" not in status(workspace)
