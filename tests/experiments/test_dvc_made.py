"""Experiments made by DVC itself in a repository (``dvc exp run``, shared with ``dvc exp push``) are listed when the
repository is cloned as a project, and by importExperiments later, with their params and metrics as
``dvc exp show --json`` shows them in the workspace (the oracle, run on a copy)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.conftest import GraphQLClient, MakeUser, workspace_of
from tests.experiments.fixtures import TABLE, cells_by_column, experiment_finished, git, run_experiment
from tests.experiments.test_promotion import branch_experiment, no_copies_left
from tests.results.fixtures import flat
from tests.stack import Stack

MakeProject = Callable[..., Awaitable[dict[str, Any]]]

# Only the standard library: the project has no requirements file.
TRAIN_PY = """\
import json
lr = float(open("params.yaml").read().split(":")[1])
json.dump({"score": round(lr * 10, 6)}, open("metrics.json", "w"))
"""
DVC_YAML = """\
stages:
  train:
    cmd: python3 train.py
    deps: [train.py]
    params: [lr]
    metrics:
    - metrics.json:
        cache: false
"""

LISTED = """
query($p: ID!) {
  experiments(pipelineId: $p, first: 50) {
    ... on ExperimentConnection {
      edges { node {
        id name state source runId expRef expRev baseSha setParams { file key value }
        params { entries { file key number } }
        metrics { entries { file key number } }
        run { id }
      } }
    }
  }
}
"""

PIPELINES = """
query($id: ID!) { project(id: $id) { ... on Project { pipelines { edges { node { id name path } } } } } }
"""

IMPORT = """
mutation($id: ID!) {
  importExperiments(projectId: $id) {
    __typename
    ... on ExperimentsImported { note experiments { name source expRef } }
    ... on Error { message }
  }
}
"""


def run(root: Path, *args: str) -> str:
    done = subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def dvc(root: Path, *args: str) -> str:
    return run(root, sys.executable, "-m", "dvc", *args)


def upstream_with_experiments(tmp_path: Path) -> tuple[Path, Path]:
    """A repository where ``dvc exp run -S`` made two experiments, pushed with ``dvc exp push`` to a bare remote;
    (the repository, the remote)."""
    source, remote = tmp_path / "upstream", tmp_path / "remote.git"
    source.mkdir()
    run(source, "git", "init", "-q")
    run(source, "git", "config", "user.name", "someone")
    run(source, "git", "config", "user.email", "someone@example.com")
    dvc(source, "init", "-q")
    (source / "params.yaml").write_text("lr: 0.01\n")
    (source / "dvc.yaml").write_text(DVC_YAML)
    (source / "train.py").write_text(TRAIN_PY)
    dvc(source, "repro", "-q")
    run(source, "git", "add", "-A")
    run(source, "git", "commit", "-qm", "a pipeline")
    for value, name in (("0.2", "lr-02"), ("0.5", "lr-05")):
        dvc(source, "exp", "run", "-q", "-S", f"lr={value}", "-n", name)
    run(tmp_path, "git", "init", "-q", "--bare", str(remote))
    run(source, "git", "remote", "add", "origin", str(remote))
    run(source, "git", "push", "-q", "origin", "HEAD")
    dvc(source, "exp", "push", "origin", "--all-commits")
    return source, remote


def shown_by_dvc(workspace: Path, tmp_path: Path) -> dict[str, dict[str, Any]]:
    """``dvc exp show --json -A`` on a copy of the workspace: name -> {rev, params, metrics} flattened."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    copy = tmp_path / "oracle"
    shutil.copytree(workspace, copy, symlinks=True)
    shown = json.loads(dvc(copy, "exp", "show", "--json", "-A"))
    found = {}
    for baseline in shown:
        for group in baseline.get("experiments") or []:
            for rev in group["revs"]:
                data = rev["data"]
                found[rev["name"]] = {
                    "rev": rev["rev"],
                    "params": {f"{f}:{k}": v for f, c in data["params"].items() for k, v in flat(c["data"]).items()},
                    "metrics": {f"{f}:{k}": v for f, c in data["metrics"].items() for k, v in flat(c["data"]).items()},
                }
    return found


def entries(result: dict[str, Any] | None) -> dict[str, Any]:
    assert result is not None
    return {f"{e['file']}:{e['key']}": e["number"] for e in result["entries"]}


async def listed(gql: GraphQLClient, pipeline_id: str) -> dict[str, dict[str, Any]]:
    page = (await gql.execute(LISTED, {"p": pipeline_id}))["experiments"]
    return {e["node"]["name"]: e["node"] for e in page["edges"]}


async def test_experiments_dvc_made_in_a_cloned_repository_are_listed_as_dvc_exp_show_shows_them(
    gql: GraphQLClient, make_project: MakeProject, make_user: MakeUser, stack: Stack, tmp_path: Path
) -> None:
    source, remote = upstream_with_experiments(tmp_path)
    project = await make_project(repository_url=str(remote))
    workspace = workspace_of(stack, project["id"])
    pipelines = (await gql.execute(PIPELINES, {"id": project["id"]}))["project"]["pipelines"]["edges"]
    (pipeline_id,) = [p["node"]["id"] for p in pipelines if p["node"]["path"] == "dvc.yaml"]

    found = await listed(gql, pipeline_id)
    oracle = shown_by_dvc(workspace, tmp_path / "first")
    assert set(found) == set(oracle) == {"lr-02", "lr-05"}, (found, oracle)
    for name, experiment in found.items():
        assert experiment["state"] == "SUCCEEDED" and experiment["source"] == "DVC", experiment
        assert experiment["runId"] is None and experiment["run"] is None
        assert experiment["expRev"] == oracle[name]["rev"] == git(workspace, "rev-parse", experiment["expRef"]).strip()
        assert entries(experiment["params"]) == oracle[name]["params"]
        assert entries(experiment["metrics"]) == oracle[name]["metrics"]
        assert experiment["baseSha"] == git(workspace, "rev-parse", "HEAD").strip()
    assert found["lr-05"]["setParams"] == [{"file": "params.yaml", "key": "lr", "value": "0.5"}]
    assert found["lr-02"]["metrics"]["entries"][0]["number"] == 2.0

    # The table compares them, deltas against their baseline (score 0.1 there).
    table = (await gql.execute(TABLE, {"p": pipeline_id, "sort": {"file": "metrics.json", "key": "score"}}))[
        "experimentsTable"
    ]
    assert [r["experiment"]["name"] for r in table["rows"]] == ["lr-05", "lr-02"]
    score = cells_by_column(table, table["rows"][0])[("METRICS", "metrics.json", "score")]
    assert score["number"] == 5.0 and abs(score["delta"] - 4.9) < 1e-9, score

    # They are DVC experiments like the service's own: one becomes a branch.
    branched = await branch_experiment(gql, found["lr-05"]["id"], "best")
    assert branched["__typename"] == "ExperimentBranched" and branched["sha"] == found["lr-05"]["expRev"], branched

    # One made and pushed later, and one of the service's own: importExperiments lists the first only, once.
    dvc(source, "exp", "run", "-q", "-S", "lr=0.7", "-n", "lr-07")
    dvc(source, "exp", "push", "origin", "lr-07")
    ours = await run_experiment(gql, pipeline_id, set=[{"key": "lr", "value": "0.9"}], name="ours")
    assert ours["__typename"] == "ExperimentQueued", ours
    assert (await experiment_finished(gql, ours["experiment"]["id"]))["state"] == "SUCCEEDED"
    await no_copies_left(workspace)
    refs_before = git(workspace, "for-each-ref", "refs/exps")

    imported = (await gql.execute(IMPORT, {"id": project["id"]}))["importExperiments"]
    assert imported["__typename"] == "ExperimentsImported", imported
    assert [e["name"] for e in imported["experiments"]] == ["lr-07"] and imported["note"] is None, imported
    again = (await gql.execute(IMPORT, {"id": project["id"]}))["importExperiments"]
    assert again == {"__typename": "ExperimentsImported", "note": None, "experiments": []}
    # Fetching added the new ref and changed none the workspace had.
    refs_after = git(workspace, "for-each-ref", "refs/exps")
    assert set(refs_before.splitlines()) < set(refs_after.splitlines())
    assert not any("refs/exps/exec/" in line for line in refs_after.splitlines() if line not in refs_before)

    found = await listed(gql, pipeline_id)
    oracle = shown_by_dvc(workspace, tmp_path / "second")
    assert set(found) == set(oracle) == {"lr-02", "lr-05", "lr-07", "ours"}
    assert found["ours"]["source"] == "SERVICE" and found["lr-07"]["source"] == "DVC"
    for name in ("lr-07", "ours"):
        assert entries(found[name]["metrics"]) == oracle[name]["metrics"], name

    stranger = await make_user()
    assert (await stranger.execute(IMPORT, {"id": project["id"]}))["importExperiments"]["__typename"] == "NotFoundError"
