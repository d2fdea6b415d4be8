"""A 3-stage pipeline whose metric follows a param, and the GraphQL documents of experiment tests."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.api.pipeline_fixtures import create_pipeline, write_file
from tests.api.run_helpers import execute, finished
from tests.conftest import GraphQLClient
from tests.results.fixtures import copy_workspace, dvc_json
from tests.stack import Stack
from tests.waiting import eventually

MakeProject = Callable[..., Awaitable[dict[str, Any]]]

PARAMS = "train:\n  lr: 0.01\n  epochs: 3\npause: 0\n"
# train.py reads params.yaml with PyYAML, from the project's own environment (built by the run's first step): stage
# commands never see the service's packages.
REQUIREMENTS = "PyYAML==6.0.2\n"

TRAIN_PY = """\
import time, yaml
params = yaml.safe_load(open("params.yaml"))
lr = params["train"]["lr"]
print(f"training with lr={lr}", flush=True)
time.sleep(params["pause"])  # a slow training, for tests that act while it runs
if lr > 1:
    raise SystemExit(f"lr {lr} is too large")
open("model.txt", "w").write(f"{lr}\\n" + open("prepared.txt").read())
"""

EVALUATE_PY = """\
import json
lr = float(open("model.txt").readline())
json.dump({"score": round(lr * 10, 6)}, open("metrics.json", "w"))
"""

STAGES: list[dict[str, Any]] = [
    {"name": "prepare", "command": "echo rows > prepared.txt", "outs": ["prepared.txt"]},
    {
        "name": "train",
        "command": "python3 train.py",
        "deps": ["prepared.txt", "train.py"],
        "params": ["train.lr"],
        "outs": ["model.txt"],
    },
    {
        "name": "evaluate",
        "command": "python3 evaluate.py",
        "deps": ["model.txt", "evaluate.py"],
        "metrics": ["metrics.json"],
    },
]

EXPERIMENT_FIELDS = """
  id name state error baseRev baseSha expRef expRev runId createdBy
  setParams { file key value }
  baseParams { entries { file key number } }
  baseMetrics { entries { file key number } }
"""

RUN_EXPERIMENT = f"""
mutation($p: ID!, $set: [ParamOverrideInput!]!, $name: String, $base: String) {{
  runExperiment(pipelineId: $p, setParams: $set, name: $name, baseRev: $base) {{
    __typename
    ... on ExperimentQueued {{ experiment {{ {EXPERIMENT_FIELDS} }} }}
    ... on Error {{ message }}
    ... on ValidationError {{ issues {{ path message }} }}
  }}
}}
"""

EXPERIMENT = f"""
query($id: ID!) {{
  experiment(id: $id) {{
    __typename
    ... on Experiment {{
      {EXPERIMENT_FIELDS}
      run {{
        id state error trigger
        stages {{ name state exitCode log {{ ... on StageLog {{ text }} }} }}
        metrics {{ entries {{ file key number }} }}
        params {{ entries {{ file key number }} }}
      }}
    }}
    ... on Error {{ message }}
  }}
}}
"""

EXPERIMENTS = """
query($p: ID!) {
  experiments(pipelineId: $p) {
    __typename
    ... on ExperimentConnection { edges { node { id name state } } }
    ... on Error { message }
  }
}
"""

TABLE = """
query($p: ID!, $sort: MetricSortInput) {
  experimentsTable(pipelineId: $p, sortBy: $sort) {
    __typename
    ... on ExperimentsTable {
      columns { kind file key }
      rows { experiment { id name state } hasResults cells { value number delta } }
      sortedBy { file key }
      notes
    }
    ... on Error { message }
  }
}
"""

FINISHED = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"}


async def experiment_project(gql: GraphQLClient, project_id: str) -> str:
    """Writes the files and the pipeline; returns the pipeline's id."""
    await write_file(gql, project_id, "params.yaml", PARAMS)
    await write_file(gql, project_id, "requirements.txt", REQUIREMENTS)
    await write_file(gql, project_id, "train.py", TRAIN_PY)
    await write_file(gql, project_id, "evaluate.py", EVALUATE_PY)
    created = await create_pipeline(gql, project_id, name="exp", stages=STAGES)
    assert created["__typename"] == "PipelineWritten", created
    pipeline_id: str = created["pipeline"]["id"]
    return pipeline_id


async def run_experiment(gql: GraphQLClient, pipeline_id: str, **variables: Any) -> dict[str, Any]:
    result: dict[str, Any] = (await gql.execute(RUN_EXPERIMENT, {"p": pipeline_id, **variables}))["runExperiment"]
    return result


async def get_experiment(gql: GraphQLClient, experiment_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await gql.execute(EXPERIMENT, {"id": experiment_id}))["experiment"]
    return found


async def experiment_finished(gql: GraphQLClient, experiment_id: str, *, seconds: float = 120) -> dict[str, Any]:
    """Poll the experiment until it ends; fail with the last state seen after ``seconds``."""

    async def ended() -> dict[str, Any] | None:
        found = await get_experiment(gql, experiment_id)
        return found if found["state"] in FINISHED else None

    return await eventually(ended, seconds=seconds, what=f"experiment {experiment_id} ending")


def user_files(root: Path) -> dict[str, str]:
    """Every file of the workspace but git's and DVC's own stores (the cache is shared with copies on purpose):
    path -> hash of its bytes (or of a link's target)."""
    digest: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if relative == ".git" or relative.startswith((".git/", ".dvc/cache", ".dvc/tmp")):
            continue
        if path.is_symlink():
            digest[relative] = f"link:{path.readlink()}"
        elif path.is_file():
            digest[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


def cells_by_column(table: dict[str, Any], row: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(c["kind"], c["file"], c["key"]): cell for c, cell in zip(table["columns"], row["cells"], strict=True)}


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=30).stdout


def worktrees(workspace: Path) -> list[str]:
    listed = git(workspace, "worktree", "list", "--porcelain").splitlines()
    return [line.removeprefix("worktree ") for line in listed if line.startswith("worktree ")]


def copies_left(stack: Stack) -> list[str]:
    folder = Path(stack.env["WORKSPACE_ROOT"]) / ".experiments"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def dvc_experiments(workspace: Path, tmp_path: Path) -> dict[str, dict[str, Any]]:
    """``dvc exp show --json`` in a copy of the workspace: each experiment's data by name."""
    shown = dvc_json(copy_workspace(workspace, tmp_path), "exp", "show")
    found: dict[str, dict[str, Any]] = {}
    for baseline in shown:
        for group in baseline.get("experiments") or []:
            for rev in group["revs"]:
                found[rev["name"]] = rev["data"]
    return found


async def prepared_pipeline(gql: GraphQLClient, make_project: MakeProject) -> tuple[str, str]:
    """A project whose pipeline ran once in the workspace (so its outputs are in the cache); (project, pipeline)."""
    project = await make_project()
    pipeline_id = await experiment_project(gql, project["id"])
    run = await finished(gql, await execute(gql, pipeline_id))
    assert run["state"] == "SUCCEEDED", run
    return project["id"], pipeline_id
