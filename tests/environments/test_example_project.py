"""DVC's example project (a replica: tests/environments/example_project.py) runs in its own environment, sandboxed.

Its requirements (pandas, scikit-learn, scipy, matplotlib, dvclive, PyYAML) come from PyPI into the project's own
virtualenv, built as the run's first step; nothing reaches the service's virtualenv, and its stages import them.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Awaitable, Callable
from importlib import metadata
from typing import Any

import httpx

from tests.api.pipeline_fixtures import create_pipeline, write_file
from tests.api.run_helpers import execute, finished
from tests.conftest import GraphQLClient, workspace_of
from tests.environments import example_project
from tests.results.fixtures import RUN_RESULTS, copy_workspace, dvc_json
from tests.stack import Stack

MakeProject = Callable[..., Awaitable[dict[str, Any]]]
MakeUser = Callable[..., Awaitable[Any]]
ENVIRONMENT = ":environment"
DATA_SOURCE = "data/data.xml.dvc"  # DVC lists the `.dvc` file as a stage of its own, verified before the first
STAGES = ["prepare", "featurize", "train", "evaluate"]
# A cold build downloads about 60 MB of wheels; uv's cache (beside the environments) makes a second one quick.
SECONDS = 300
# What the project needs, by import name: none of it may be importable from the service's interpreter.
PROJECT_MODULES = ("pandas", "sklearn", "scipy", "matplotlib", "dvclive")


def service_packages() -> dict[str, str]:
    """Every distribution of the interpreter the tests (and the worker) run with: the service's virtualenv."""
    return {dist.metadata["Name"].lower(): dist.version for dist in metadata.distributions(path=sys.path)}


async def test_the_example_project_runs_with_its_requirements_in_its_own_environment(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, http: httpx.AsyncClient, tmp_path: Any
) -> None:
    before = service_packages()
    assert not [m for m in PROJECT_MODULES if importlib.util.find_spec(m) is not None], "the service has them"
    project = await make_project()
    project_id = project["id"]
    for path, content in example_project.FILES.items():
        await write_file(gql, project_id, path, content)
    data = example_project.posts_xml()
    await write_file(gql, project_id, "data/data.xml", data)
    await write_file(gql, project_id, "data/data.xml.dvc", example_project.data_source(data))
    written = await create_pipeline(gql, project_id, name="example", stages=example_project.STAGES)
    assert written["__typename"] == "PipelineWritten", written

    run = await finished(gql, await execute(gql, written["pipeline"]["id"]), seconds=SECONDS)

    states = {s["name"]: s["state"] for s in run["stages"]}
    logs = {s["name"]: s["log"]["text"] for s in run["stages"]}
    assert run["state"] == "SUCCEEDED", (run["error"], states, {n: t[-2000:] for n, t in logs.items() if n in STAGES})
    assert [s["name"] for s in run["stages"]] == [ENVIRONMENT, DATA_SOURCE, *STAGES]
    assert states[ENVIRONMENT] in {"SUCCEEDED", "SKIPPED"}, "built, or found built by an earlier run"
    assert {name: states[name] for name in (DATA_SOURCE, *STAGES)} == dict.fromkeys((DATA_SOURCE, *STAGES), "SUCCEEDED")
    if states[ENVIRONMENT] == "SUCCEEDED":
        for pinned in ("pandas==2.2.3", "scikit-learn==1.5.2", "dvclive==3.48.0", "matplotlib==3.9.2"):
            assert f"+ {pinned}" in logs[ENVIRONMENT], logs[ENVIRONMENT]
    assert "The input data frame data/prepared/train.tsv size is" in logs["featurize"], "pandas read it"

    # The metrics dvclive wrote, as the service's results API reads them, equal DVC's own reading.
    results = (await gql.execute(RUN_RESULTS, {"id": run["id"]}))["run"]
    assert results["metrics"]["errors"] == [], results["metrics"]
    metrics = {(e["file"], e["key"]): e["number"] for e in results["metrics"]["entries"]}
    keys = {f"{kind}.{split}" for kind in ("avg_prec", "roc_auc") for split in ("train", "test")}
    assert {key for file, key in metrics if file == "eval/metrics.json"} == keys, metrics
    assert all(0.5 < value <= 1.0 for value in metrics.values()), metrics  # the posts are separable, not random
    workspace = workspace_of(stack, project_id)
    oracle = dvc_json(copy_workspace(workspace, tmp_path), "metrics", "show")
    shown = oracle[""]["data"]["eval/metrics.json"]["data"]
    assert {key: metrics[("eval/metrics.json", key)] for key in keys} == {
        f"{kind}.{split}": shown[kind][split] for kind in ("avg_prec", "roc_auc") for split in ("train", "test")
    }
    assert json.loads((workspace / "eval" / "metrics.json").read_text()) == shown
    plots = {p["id"] for p in results["plots"]["plots"]}
    assert "eval/plots/images/importance.png" in plots, plots  # matplotlib's figure, through dvclive
    assert "eval/plots/sklearn/roc/test.json" in plots, plots

    # The stages ran in the sandbox, and nothing was installed into the service's virtualenv meanwhile.
    health = await http.get("/health", headers=gql.headers)
    assert {w["mode"] for w in health.json()["sandbox"]["workers"].values()} == {"bubblewrap"}, health.json()
    assert service_packages() == before
    assert not [m for m in PROJECT_MODULES if importlib.util.find_spec(m) is not None]
