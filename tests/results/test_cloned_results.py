"""A cloned repository with top-level `metrics:` and `plots:` sections and several earlier commits."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.api.run_helpers import execute, finished
from tests.conftest import GraphQLClient, workspace_of
from tests.results.fixtures import RUN_RESULTS, copy_workspace, dvc_json, flat
from tests.results.test_git_history import DIFF, as_cli_diff
from tests.stack import Stack

MakeProject = Callable[..., Awaitable[dict[str, Any]]]

DVC_YAML = """\
stages:
  score:
    cmd: python3 score.py
    deps: [score.py]
    outs: [curve.json]
metrics:
  - summary.json
  - report/quality.yaml
plots:
  - curve.json:
      x: step
      y: value
      title: Learning curve
"""

SCORE_PY = """\
import json
json.dump([{"step": s, "value": s * 0.1} for s in range(4)], open("curve.json", "w"))
json.dump({"accuracy": 0.99, "size": {"rows": 40}}, open("summary.json", "w"))
"""

PIPELINES = "query($id: ID!) { project(id: $id) { ... on Project { pipelines { edges { node { id path } } } } } }"

WORKSPACE_METRICS = """
query($id: ID!) {
  pipeline(id: $id) {
    ... on Pipeline { metrics { ... on ResultEntries { entries { file key value } errors { file } } } }
  }
}
"""


def git(root: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
    return subprocess.run(command, cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def upstream(tmp_path: Path) -> tuple[Path, list[str]]:
    """Three commits, each with other metrics; DVC initialised, metrics files tracked by git."""
    source = tmp_path / "upstream"
    source.mkdir()
    git(source, "init", "-q")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=source, check=True)
    (source / "dvc.yaml").write_text(DVC_YAML)
    (source / "score.py").write_text(SCORE_PY)
    (source / "report").mkdir()
    shas = []
    for accuracy, f1 in ((0.7, 0.5), (0.8, 0.55), (0.9, 0.6)):
        (source / "summary.json").write_text(json.dumps({"accuracy": accuracy, "size": {"rows": 10}}))
        (source / "report/quality.yaml").write_text(f"f1: {f1}\nlabels: [a, b]\n")
        git(source, "add", "--all")
        git(source, "commit", "-qm", f"accuracy {accuracy}")
        shas.append(git(source, "rev-parse", "HEAD"))
    return source, shas


async def test_a_clone_with_top_level_sections_shows_and_diffs_across_its_commits(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, tmp_path: Path
) -> None:
    source, shas = upstream(tmp_path)
    project = await make_project(repository_url=str(source))
    workspace = workspace_of(stack, project["id"])
    copy = copy_workspace(workspace, tmp_path)
    pipeline = (await gql.execute(PIPELINES, {"id": project["id"]}))["project"]["pipelines"]["edges"][0]["node"]

    now = (await gql.execute(WORKSPACE_METRICS, {"id": pipeline["id"]}))["pipeline"]["metrics"]
    (shown,) = dvc_json(copy, "metrics", "show").values()
    assert {e["file"]: {} for e in now["entries"]}.keys() == shown["data"].keys()
    for entry in now["entries"]:
        expected = flat(shown["data"][entry["file"]]["data"])[entry["key"]]
        assert entry["value"] == expected or str(entry["value"]) == expected
    assert {(e["file"], e["key"]) for e in now["entries"]} >= {
        ("summary.json", "accuracy"),
        ("report/quality.yaml", "f1"),
    }

    for a, b in ((shas[0], shas[2]), (shas[1], "HEAD"), (shas[0], "workspace")):
        data = await gql.execute(DIFF, {"p": project["id"], "a": a, "b": b, "all": True})
        assert data["metricsDiff"]["__typename"] == "RevisionDiff", data
        assert as_cli_diff(data["metricsDiff"]["entries"]) == dvc_json(copy, "metrics", "diff", a, b, "--all")
    first_to_last = await gql.execute(DIFF, {"p": project["id"], "a": shas[0], "b": shas[2], "all": False})
    changes = {(e["file"], e["key"]): (e["old"], e["new"]) for e in first_to_last["metricsDiff"]["entries"]}
    assert changes == {("summary.json", "accuracy"): (0.7, 0.9), ("report/quality.yaml", "f1"): (0.5, 0.6)}

    # A run of the cloned pipeline keeps the top-level sections' metrics and plots.
    run_id = await execute(gql, pipeline["id"])
    assert (await finished(gql, run_id))["state"] == "SUCCEEDED"
    run = (await gql.execute(RUN_RESULTS, {"id": run_id}))["run"]
    metrics = {(e["file"], e["key"]): e["value"] for e in run["metrics"]["entries"]}
    assert metrics[("summary.json", "accuracy")] == 0.99 and metrics[("report/quality.yaml", "f1")] == 0.6
    plots = {p["id"]: p for p in run["plots"]["plots"]}
    curve = next(p for name, p in plots.items() if name.endswith("curve.json"))
    assert [d["value"] for d in curve["data"]] == [s * 0.1 for s in range(4)]
    assert curve["content"]["title"]["text"] == "Learning curve"
    after_run = copy_workspace(workspace, tmp_path / "after")
    (shown_after,) = dvc_json(after_run, "metrics", "show").values()
    assert flat(shown_after["data"]["summary.json"]["data"]) == {
        k: v for (f, k), v in metrics.items() if f == "summary.json"
    }
