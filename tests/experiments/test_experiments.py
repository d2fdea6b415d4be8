"""Experiments on the real stack: a run with overrides in a copy of the workspace, saved as a DVC experiment.

DVC is the oracle: ``dvc exp show --json`` run by hand in a copy of the workspace lists what the service saved.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from tests.api.run_helpers import execute, finished, get_run, wait_for_run
from tests.conftest import GraphQLClient, MakeUser, workspace_of
from tests.experiments.fixtures import (
    EXPERIMENTS,
    TABLE,
    cells_by_column,
    copies_left,
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
from tests.stack import Stack
from tests.waiting import eventually

MakeProject = Callable[..., Awaitable[dict[str, Any]]]


async def test_an_experiment_runs_in_a_copy_and_dvc_lists_it(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, tmp_path: Path
) -> None:
    project_id, pipeline_id = await prepared_pipeline(gql, make_project)
    workspace = workspace_of(stack, project_id)
    files_before = user_files(workspace)
    status_before = git(workspace, "status", "--porcelain")

    queued = await run_experiment(gql, pipeline_id, set=[{"key": "train.lr", "value": "0.1"}], name="lr-high")
    assert queued["__typename"] == "ExperimentQueued", queued
    assert queued["experiment"]["state"] == "QUEUED"
    experiment = await experiment_finished(gql, queued["experiment"]["id"])

    assert experiment["state"] == "SUCCEEDED", (experiment["error"], experiment["run"])
    assert experiment["setParams"] == [{"file": "params.yaml", "key": "train.lr", "value": "0.1"}]
    assert experiment["baseSha"] == git(workspace, "rev-parse", "HEAD").strip()
    assert experiment["expRef"].startswith("refs/exps/") and experiment["expRef"].endswith("/lr-high")
    run = experiment["run"]
    assert run["state"] == "SUCCEEDED" and run["trigger"] == "EXPERIMENT", run
    states = {s["name"]: s["state"] for s in run["stages"]}
    # The project's environment, built by the workspace's run before, is found built in the copy.
    assert states.pop(":environment") in {"SUCCEEDED", "SKIPPED"}, run["stages"]
    # prepare's output came from the shared cache: DVC found the stage up to date in the copy.
    assert states == {"prepare": "SKIPPED", "train": "SUCCEEDED", "evaluate": "SUCCEEDED"}, run["stages"]
    train_log = next(s for s in run["stages"] if s["name"] == "train")["log"]["text"]
    assert "training with lr=0.1" in train_log
    assert {(e["file"], e["key"]): e["number"] for e in run["metrics"]["entries"]} == {("metrics.json", "score"): 1.0}
    params = {(e["file"], e["key"]): e["number"] for e in run["params"]["entries"]}
    assert params[("params.yaml", "train.lr")] == 0.1 and params[("params.yaml", "train.epochs")] == 3
    base_metrics = {e["key"]: e["number"] for e in experiment["baseMetrics"]["entries"]}
    assert base_metrics == {"score": 0.1}

    # The workspace's files never changed, and its copy is gone (git's record of it too).
    assert user_files(workspace) == files_before
    assert git(workspace, "status", "--porcelain") == status_before
    assert experiment["id"] not in copies_left(stack)
    assert worktrees(workspace) == [str(workspace)]

    # DVC's own listing, by hand in a copy of the workspace.
    listed = dvc_experiments(workspace, tmp_path)
    assert "lr-high" in listed, listed
    data = listed["lr-high"]
    assert data["rev"] == experiment["expRev"]
    assert data["params"]["params.yaml"]["data"]["train"] == {"lr": 0.1, "epochs": 3}
    assert data["metrics"]["metrics.json"]["data"] == {"score": 1.0}

    page = (await gql.execute(EXPERIMENTS, {"p": pipeline_id}))["experiments"]
    assert [e["node"]["name"] for e in page["edges"]] == ["lr-high"]


async def test_the_table_compares_experiments_with_their_base_and_sorts_by_a_metric(
    gql: GraphQLClient, make_project: MakeProject
) -> None:
    _, pipeline_id = await prepared_pipeline(gql, make_project)
    ids = []
    for lr in ("0.05", "0.2"):
        queued = await run_experiment(gql, pipeline_id, set=[{"key": "train.lr", "value": lr}], name=f"lr-{lr}")
        assert queued["__typename"] == "ExperimentQueued", queued
        ids.append(queued["experiment"]["id"])
    for experiment_id in ids:
        assert (await experiment_finished(gql, experiment_id))["state"] == "SUCCEEDED"

    sort = {"file": "metrics.json", "key": "score", "descending": True}
    table = (await gql.execute(TABLE, {"p": pipeline_id, "sort": sort}))["experimentsTable"]
    assert table["__typename"] == "ExperimentsTable", table
    assert table["sortedBy"] == {"file": "metrics.json", "key": "score"} and table["notes"] == []
    assert [r["experiment"]["name"] for r in table["rows"]] == ["lr-0.2", "lr-0.05"]
    best = cells_by_column(table, table["rows"][0])
    assert best[("PARAMS", "params.yaml", "train.lr")]["number"] == 0.2
    assert best[("PARAMS", "params.yaml", "train.lr")]["delta"] == pytest.approx(0.19)
    assert best[("METRICS", "metrics.json", "score")]["number"] == 2.0
    assert best[("METRICS", "metrics.json", "score")]["delta"] == pytest.approx(1.9)
    ascending = await gql.execute(TABLE, {"p": pipeline_id, "sort": {**sort, "descending": False}})
    assert [r["experiment"]["name"] for r in ascending["experimentsTable"]["rows"]] == ["lr-0.05", "lr-0.2"]


async def test_a_failing_experiment_keeps_its_log_and_error_and_leaves_no_copy(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, tmp_path: Path
) -> None:
    project_id, pipeline_id = await prepared_pipeline(gql, make_project)
    workspace = workspace_of(stack, project_id)
    files_before = user_files(workspace)

    queued = await run_experiment(gql, pipeline_id, set=[{"key": "train.lr", "value": "5"}], name="too-large")
    assert queued["__typename"] == "ExperimentQueued", queued
    experiment = await experiment_finished(gql, queued["experiment"]["id"])

    assert experiment["state"] == "FAILED", experiment
    assert "train" in experiment["error"], experiment
    assert experiment["expRef"] is None
    stages = {s["name"]: s for s in experiment["run"]["stages"]}
    assert stages["train"]["state"] == "FAILED" and stages["train"]["exitCode"] != 0
    assert "lr 5 is too large" in stages["train"]["log"]["text"]
    assert stages["evaluate"]["state"] == "NOT_RUN"
    assert experiment["id"] not in copies_left(stack)
    assert worktrees(workspace) == [str(workspace)]
    assert user_files(workspace) == files_before
    assert "too-large" not in dvc_experiments(workspace, tmp_path)


BAD_OVERRIDES: list[tuple[str, dict[str, Any], str]] = [
    ("outside the workspace", {"set": [{"file": "../other/params.yaml", "key": "train.lr", "value": "1"}]}, "file"),
    ("an absolute path", {"set": [{"file": "/etc/passwd", "key": "train.lr", "value": "1"}]}, "file"),
    ("a key DVC does not find", {"set": [{"key": "train.nope", "value": "1"}]}, "setParams"),
    ("a malformed key", {"set": [{"key": "train..lr", "value": "1"}]}, "key"),
    ("a missing params file", {"set": [{"file": "nope.yaml", "key": "a", "value": "1"}]}, "file"),
    ("an unknown base", {"set": [{"key": "train.lr", "value": "1"}], "base": "no-such-branch"}, "baseRev"),
    ("a bad name", {"set": [{"key": "train.lr", "value": "1"}], "name": "a b/../c"}, "name"),
]


async def test_bad_input_is_a_typed_error_and_nothing_is_stored(
    gql: GraphQLClient, make_project: MakeProject, make_user: MakeUser, stack: Stack, mongo: Any
) -> None:
    project = await make_project()
    pipeline_id = await experiment_project(gql, project["id"])
    workspace = workspace_of(stack, project["id"])
    files_before = user_files(workspace)
    runs_before = mongo.runs.count_documents({"pipeline_id": pipeline_id})

    for what, variables, path in BAD_OVERRIDES:
        answer = await run_experiment(gql, pipeline_id, **variables)
        assert answer["__typename"] == "ValidationError", (what, answer)
        assert any(path in issue["path"] for issue in answer["issues"]), (what, answer)

    unknown = await run_experiment(gql, "0" * 24, set=[{"key": "train.lr", "value": "1"}])
    assert unknown["__typename"] == "NotFoundError", unknown
    stranger = await make_user()
    theirs = await run_experiment(stranger, pipeline_id, set=[{"key": "train.lr", "value": "1"}])
    assert theirs["__typename"] == "NotFoundError", theirs

    assert mongo.experiments.count_documents({"pipeline_id": pipeline_id}) == 0
    assert mongo.runs.count_documents({"pipeline_id": pipeline_id}) == runs_before
    assert user_files(workspace) == files_before
    listed = (await gql.execute(EXPERIMENTS, {"p": pipeline_id}))["experiments"]
    assert listed["edges"] == []


async def test_an_experiment_run_cannot_be_retried_in_the_workspace(
    gql: GraphQLClient, make_project: MakeProject
) -> None:
    _, pipeline_id = await prepared_pipeline(gql, make_project)
    queued = await run_experiment(gql, pipeline_id, set=[{"key": "train.lr", "value": "0.3"}])
    experiment = await experiment_finished(gql, queued["experiment"]["id"])
    assert experiment["state"] == "SUCCEEDED", (experiment["error"], experiment["run"])
    assert experiment["name"].startswith("exp-")
    retried = (await gql.execute(RETRY, {"id": experiment["runId"]}))["retryRun"]
    assert retried["__typename"] == "ConflictError", retried
    assert (await get_run(gql, experiment["runId"]))["state"] == "SUCCEEDED"


RETRY = """
mutation($id: ID!) { retryRun(id: $id) { __typename ... on Error { message } } }
"""


DRY_RUN = """
mutation($id: ID!) { dryRunPipeline(id: $id) { __typename ... on DryRunPlan { upToDate } ... on Error { message } } }
"""

CANCEL = """
mutation($id: ID!) { cancelRun(id: $id) { __typename ... on RunCancelled { run { state } } ... on Error { message } } }
"""


async def test_the_workspace_is_free_while_an_experiment_runs_and_a_cancel_ends_it(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, tmp_path: Path
) -> None:
    project_id, pipeline_id = await prepared_pipeline(gql, make_project)
    workspace = workspace_of(stack, project_id)
    files_before = user_files(workspace)
    queued = await run_experiment(
        gql, pipeline_id, set=[{"key": "train.lr", "value": "0.2"}, {"key": "pause", "value": "120"}], name="slow"
    )
    assert queued["__typename"] == "ExperimentQueued", queued
    run_id = queued["experiment"]["runId"]
    await wait_for_run(
        gql, run_id, lambda r: any(s["name"] == "train" and s["state"] == "RUNNING" for s in r["stages"])
    )

    try:
        # The experiment does not hold the workspace: a dry run and a whole run of the workspace go on meanwhile.
        plan = (await gql.execute(DRY_RUN, {"id": pipeline_id}))["dryRunPipeline"]
        assert plan == {"__typename": "DryRunPlan", "upToDate": ["prepare", "train", "evaluate"]}, plan
        workspace_run = await finished(gql, await execute(gql, pipeline_id), seconds=60)
        assert workspace_run["state"] == "SUCCEEDED", workspace_run
        assert (await get_run(gql, run_id))["state"] == "RUNNING"
    finally:
        cancelled = (await gql.execute(CANCEL, {"id": run_id}))["cancelRun"]
    assert cancelled == {"__typename": "RunCancelled", "run": {"state": "CANCELLED"}}, cancelled
    experiment = await experiment_finished(gql, queued["experiment"]["id"], seconds=30)
    assert experiment["state"] == "CANCELLED", experiment
    assert experiment["expRef"] is None
    train = next(s for s in experiment["run"]["stages"] if s["name"] == "train")
    assert train["state"] == "CANCELLED" and "training with lr=0.2" in train["log"]["text"]
    await wait_until(lambda: experiment["id"] not in copies_left(stack) and worktrees(workspace) == [str(workspace)])
    assert user_files(workspace) == files_before
    assert "slow" not in dvc_experiments(workspace, tmp_path)


async def wait_until(condition: Callable[[], bool], *, seconds: float = 30) -> None:
    await eventually(condition, seconds=seconds, what="the condition")


SET_MEMBER = """
mutation($p: ID!, $u: String!, $r: Role!) {
  setProjectMember(projectId: $p, userName: $u, role: $r) { __typename }
}
"""


async def test_a_viewer_reads_experiments_but_cannot_start_one(
    gql: GraphQLClient, make_project: MakeProject, make_user: MakeUser
) -> None:
    project_id, pipeline_id = await prepared_pipeline(gql, make_project)
    queued = await run_experiment(gql, pipeline_id, set=[{"key": "train.lr", "value": "0.5"}], name="seen")
    experiment = await experiment_finished(gql, queued["experiment"]["id"])
    assert experiment["state"] == "SUCCEEDED", experiment
    viewer = await make_user()
    added = await gql.execute(SET_MEMBER, {"p": project_id, "u": viewer.name, "r": "VIEWER"})
    assert added["setProjectMember"]["__typename"] == "MembersChanged"

    refused = await run_experiment(viewer, pipeline_id, set=[{"key": "train.lr", "value": "0.6"}])
    assert refused["__typename"] == "ForbiddenError", refused
    seen = await get_experiment(viewer, experiment["id"])
    assert seen["state"] == "SUCCEEDED" and seen["run"]["state"] == "SUCCEEDED"
    table = (await viewer.execute(TABLE, {"p": pipeline_id, "sort": None}))["experimentsTable"]
    assert [r["experiment"]["name"] for r in table["rows"]] == ["seen"]
    stranger = await make_user()
    assert (await get_experiment(stranger, experiment["id"]))["__typename"] == "NotFoundError"


async def test_a_copy_left_by_a_worker_that_stopped_is_removed(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, mongo: Any
) -> None:
    project_id, pipeline_id = await prepared_pipeline(gql, make_project)
    workspace = workspace_of(stack, project_id)
    queued = await run_experiment(gql, pipeline_id, set=[{"key": "train.lr", "value": "7"}], name="orphan")
    experiment = await experiment_finished(gql, queued["experiment"]["id"])
    assert experiment["state"] == "FAILED", experiment
    # What a worker killed after its run was reaped leaves: the copy (a registered worktree), the experiment RUNNING.
    copy = Path(stack.env["WORKSPACE_ROOT"]) / ".experiments" / experiment["id"]
    git(workspace, "worktree", "add", "--detach", str(copy), "HEAD")
    mongo.experiments.update_one({"_id": ObjectId(experiment["id"])}, {"$set": {"state": "running", "error": None}})

    await wait_until(lambda: not copy.exists() and worktrees(workspace) == [str(workspace)], seconds=60)
    stored = mongo.experiments.find_one({"_id": ObjectId(experiment["id"])})
    assert stored["state"] == "failed" and "train" in stored["error"], stored
