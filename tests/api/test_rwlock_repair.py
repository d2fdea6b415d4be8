"""A workspace whose `.dvc/tmp/rwlock` a killed DVC process left empty or half written is not bricked: it answers
status, dry-run and validation and runs its pipeline to SUCCEEDED, and the file is valid afterwards. DVC's own CLI on
a copy taken before the repair shows the problem is DVC's (it refuses every operation)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.api.pipeline_fixtures import create_pipeline, write_example_files
from tests.api.run_helpers import execute, finished
from tests.conftest import GraphQLClient, workspace_of
from tests.stack import Stack

MakeProject = Callable[..., Awaitable[dict[str, Any]]]

STATUS = """
query($id: ID!) {
  pipeline(id: $id) {
    ... on Pipeline {
      status { __typename ... on PipelineStatus { upToDate stages { name upToDate } } ... on Error { message } }
    }
  }
}
"""
DRY_RUN = """
mutation($id: ID!) {
  dryRunPipeline(id: $id) { __typename ... on DryRunPlan { stages { name certainty } } ... on Error { message } }
}
"""
VALIDATE = """
mutation($id: ID!) {
  validatePipeline(id: $id) { __typename ... on ValidationReport { valid } ... on Error { message } }
}
"""


def half_a_lock_document(root: Path) -> str:
    """What DVC was writing while one stage held its locks, cut where a kill -9 stops the write."""
    info = {"pid": 999999, "cmd": "dvc repro"}
    document = json.dumps(
        {"read": {str(root / "data.csv"): [info]}, "write": {str(root / "data" / "prepared.csv"): info}}
    )
    return document[: len(document) // 2]


def dvc(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("broken", ["empty", "half a JSON document"])
async def test_a_truncated_rwlock_does_not_brick_the_project(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, tmp_path: Path, broken: str
) -> None:
    project = await make_project()
    await write_example_files(gql, project["id"])
    written = await create_pipeline(gql, project["id"])
    assert written["__typename"] == "PipelineWritten", written
    pipeline_id = written["pipeline"]["id"]
    root = workspace_of(stack, project["id"])
    rwlock = root / ".dvc" / "tmp" / "rwlock"
    rwlock.parent.mkdir(parents=True, exist_ok=True)
    rwlock.write_text("" if broken == "empty" else half_a_lock_document(root))
    oracle = tmp_path / "copy"
    shutil.copytree(root, oracle, symlinks=True)

    refused = dvc(oracle, "status", "pipelines/ml/dvc.yaml")
    assert refused.returncode != 0
    assert "RWLock-file" in refused.stdout + refused.stderr and "corrupted" in refused.stdout + refused.stderr

    status = (await gql.execute(STATUS, {"id": pipeline_id}))["pipeline"]["status"]
    assert status["__typename"] == "PipelineStatus", status
    assert [(s["name"], s["upToDate"]) for s in status["stages"]] == [
        ("prepare", False),
        ("train", False),
        ("evaluate", False),
    ]
    json.loads(rwlock.read_text())
    plan = (await gql.execute(DRY_RUN, {"id": pipeline_id}))["dryRunPipeline"]
    assert plan["__typename"] == "DryRunPlan", plan
    assert [s["name"] for s in plan["stages"]] == ["prepare", "train", "evaluate"]
    validation = (await gql.execute(VALIDATE, {"id": pipeline_id}))["validatePipeline"]
    assert validation == {"__typename": "ValidationReport", "valid": True}

    rwlock.write_text("" if broken == "empty" else half_a_lock_document(root))  # broken again, right before a run
    run = await finished(gql, await execute(gql, pipeline_id))

    assert run["state"] == "SUCCEEDED", run
    assert [s["state"] for s in run["stages"]] == ["SUCCEEDED", "SUCCEEDED", "SUCCEEDED"]
    assert isinstance(json.loads(rwlock.read_text()), dict)
    after = dvc(root, "status", "pipelines/ml/dvc.yaml")
    assert after.returncode == 0, after.stdout + after.stderr
    assert "Data and pipelines are up to date." in after.stdout
