"""A run keeps what DVC reads when it ends: metrics, params, plots (and images behind access control)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from tests.api.pipeline_fixtures import write_file
from tests.api.run_helpers import execute, finished
from tests.conftest import GraphQLClient, MakeUser, workspace_of
from tests.results.fixtures import (
    PARAMS,
    RUN_RESULTS,
    copy_workspace,
    dvc_json,
    flat,
    results_project,
)
from tests.stack import Stack

MakeProject = Callable[..., Awaitable[dict[str, Any]]]

COMPARE = """
query($ids: [ID!]!, $baseline: ID) {
  compareRuns(runIds: $ids, baseline: $baseline) {
    __typename
    ... on RunComparison { baseline columns { kind file key } rows { runId hasResults cells { value number delta } } }
    ... on Error { message }
  }
}
"""

HISTORY = """
query($p: ID!, $file: String!, $key: String!) {
  metricHistory(pipelineId: $p, file: $file, key: $key, first: 10) {
    __typename ... on MetricHistory { points { runId value number } }
  }
}
"""

WORKSPACE_RESULTS = """
query($id: ID!) {
  pipeline(id: $id) {
    ... on Pipeline {
      metrics { __typename ... on ResultEntries { entries { file key value number } errors { file message } } }
      params { __typename ... on ResultEntries { entries { file key value number } } }
    }
  }
}
"""


async def run_results(gql: GraphQLClient, run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = (await gql.execute(RUN_RESULTS, {"id": run_id}))["run"]
    return run


def as_values(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    by_file: dict[str, dict[str, Any]] = {}
    for entry in entries:
        by_file.setdefault(entry["file"], {})[entry["key"]] = entry["value"]
        if isinstance(entry["value"], int | float) and not isinstance(entry["value"], bool):
            assert entry["number"] == entry["value"]
        else:
            assert entry["number"] is None
    return by_file


def oracle_metrics(copy: Path) -> dict[str, dict[str, Any]]:
    shown = dvc_json(copy, "metrics", "show")
    (revision,) = shown.values()
    return {file: flat(content["data"]) for file, content in revision["data"].items() if "data" in content}


def oracle_params(copy: Path) -> dict[str, dict[str, Any]]:
    """`dvc params show` is gone from DVC 3's CLI: `params diff --all` against a commit of the copy lists them all."""
    for args in (["add", "--all"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "oracle"]):
        import subprocess

        subprocess.run(["git", *args], cwd=copy, check=True, capture_output=True)
    diff = dvc_json(copy, "params", "diff", "HEAD", "--all")
    return {file: {key: change["new"] for key, change in keys.items()} for file, keys in diff.items()}


async def test_a_finished_run_keeps_metrics_params_and_plots_as_dvc_reads_them(
    gql: GraphQLClient,
    make_project: MakeProject,
    make_user: MakeUser,
    stack: Stack,
    http: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    project = await make_project()
    pipeline_id = await results_project(gql, project["id"], lr=0.1)
    first = await execute(gql, pipeline_id)
    assert (await finished(gql, first))["state"] == "SUCCEEDED"

    run = await run_results(gql, first)
    workspace = workspace_of(stack, project["id"])
    copy = copy_workspace(workspace, tmp_path)
    metrics = as_values(run["metrics"]["entries"])
    assert metrics == oracle_metrics(copy)
    assert metrics["eval/metrics.json"] == {"auc": 0.6, "detail.f1": 0.45, "detail.label": "ok"}
    assert metrics["eval/train.yaml"]["opt.momentum"] == 0.9
    assert run["metrics"]["errors"] == [] and run["metrics"]["truncation"] == []
    params = as_values(run["params"]["entries"])
    # DVC's diff prints a list as its str() (dvc.utils.diff.format_dict); the snapshot keeps the list itself.
    assert {f: {k: str(v) if isinstance(v, list) else v for k, v in keys.items()} for f, keys in params.items()} == (
        oracle_params(copy)
    )
    assert params["params.yaml"]["train.opt.name"] == "sgd" and params["params.yaml"]["train.layers"] == [8, 4]

    plots = {p["id"]: p for p in run["plots"]["plots"]}
    loss = plots["eval/loss.json"]
    assert loss["type"] == "VEGA" and loss["revisions"] == ["workspace"]
    drawn = json.loads((workspace / "eval/loss.json").read_text())
    assert [d["loss"] for d in loss["data"]] == [d["loss"] for d in drawn]
    shown = dvc_json(copy, "plots", "show")["data"]["eval/loss.json"][0]
    assert loss["content"]["data"] == shown["content"]["data"]
    assert loss["content"]["encoding"] == shown["content"]["encoding"]

    image = plots["eval/confusion.png"]
    assert image["type"] == "IMAGE" and image["contentType"] == "image/png"
    served = await http.get(image["imageUrl"], headers=gql.headers)
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.content == (workspace / "eval/confusion.png").read_bytes()
    stranger = await make_user()
    assert (await http.get(image["imageUrl"], headers=stranger.headers)).status_code == 404
    assert (await http.get(image["imageUrl"])).status_code == 401
    assert (await http.get(image["imageUrl"], headers={"accept": "text/html"})).status_code == 401
    assert (await http.get(f"/runs/{first}/images/7", headers=gql.headers)).status_code == 404
    assert (await stranger.execute(RUN_RESULTS, {"id": first}))["run"]["__typename"] == "NotFoundError"

    # A second run with another learning rate: one table, deltas against the first, and the metric's history.
    await write_file(gql, project["id"], "params.yaml", PARAMS.format(lr=0.3))
    second = await execute(gql, pipeline_id)
    assert (await finished(gql, second))["state"] == "SUCCEEDED"
    table = (await gql.execute(COMPARE, {"ids": [first, second], "baseline": first}))["compareRuns"]
    assert table["__typename"] == "RunComparison" and table["baseline"] == first
    columns = [(c["kind"], c["file"], c["key"]) for c in table["columns"]]
    assert columns.index(("PARAMS", "params.yaml", "train.lr")) < columns.index(("METRICS", "eval/metrics.json", "auc"))
    rows = {r["runId"]: dict(zip(columns, r["cells"], strict=True)) for r in table["rows"]}
    lr, auc, label = (
        ("PARAMS", "params.yaml", "train.lr"),
        ("METRICS", "eval/metrics.json", "auc"),
        ("METRICS", "eval/metrics.json", "detail.label"),
    )
    assert rows[first][lr] == {"value": 0.1, "number": 0.1, "delta": 0.0}
    assert rows[second][lr]["value"] == 0.3 and abs(rows[second][lr]["delta"] - 0.2) < 1e-9
    assert rows[second][auc]["number"] == 0.8 and abs(rows[second][auc]["delta"] - 0.2) < 1e-9
    assert rows[second][label] == {"value": "ok", "number": None, "delta": None}
    second_metrics = as_values((await run_results(gql, second))["metrics"]["entries"])
    assert second_metrics == oracle_metrics(copy_workspace(workspace, tmp_path / "second"))

    history = await gql.execute(HISTORY, {"p": pipeline_id, "file": "eval/metrics.json", "key": "auc"})
    assert history["metricHistory"]["points"] == [
        {"runId": second, "value": 0.8, "number": 0.8},
        {"runId": first, "value": 0.6, "number": 0.6},
    ]
    refused = (await stranger.execute(COMPARE, {"ids": [first, second]}))["compareRuns"]
    assert refused["__typename"] == "NotFoundError"

    now = (await gql.execute(WORKSPACE_RESULTS, {"id": pipeline_id}))["pipeline"]
    assert as_values(now["metrics"]["entries"]) == second_metrics
    assert as_values(now["params"]["entries"])["params.yaml"]["train.lr"] == 0.3


async def test_a_malformed_metrics_file_is_reported_per_file_and_the_run_still_succeeds(
    gql: GraphQLClient, make_project: MakeProject
) -> None:
    project = await make_project()
    script = "open('bad.json', 'w').write('{not json')\nopen('good.json', 'w').write('{\"a\": 1}')\n"
    await write_file(gql, project["id"], "broken.py", script)
    stages = [
        {
            "name": "broken",
            "command": "python3 broken.py",
            "metrics": ["bad.json", "good.json"],
            "plots": ["missing.csv"],
        }
    ]
    from tests.api.pipeline_fixtures import create_pipeline

    created = await create_pipeline(gql, project["id"], name="broken", stages=stages)
    assert created["__typename"] == "PipelineWritten", created
    run_id = await execute(gql, created["pipeline"]["id"])
    final = await finished(gql, run_id)
    assert final["state"] == "FAILED"  # DVC fails the stage: its plot output was never written
    run = await run_results(gql, run_id)
    assert as_values(run["metrics"]["entries"]) == {"good.json": {"a": 1}}
    errors = {e["file"]: e for e in run["metrics"]["errors"]}
    assert set(errors) == {"bad.json"} and "JSON" in errors["bad.json"]["message"]
    assert any(e["file"] == "missing.csv" for e in run["plots"]["errors"]), run["plots"]
