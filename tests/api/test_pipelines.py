"""Pipelines end to end: define, inspect (DAG, status, dry-run plan), update, delete."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from tests.api.pipeline_fixtures import STAGES, UPDATE_PIPELINE, create_pipeline, write_example_files, write_file
from tests.conftest import GraphQLClient, workspace_of
from tests.reliability import ReliabilityLog
from tests.stack import Stack

MakeProject = Callable[..., Awaitable[dict[str, Any]]]

INSPECT = """
query($id: ID!) {
  pipeline(id: $id) {
    __typename
    ... on Pipeline {
      name path version
      stages { name }
      validation { valid }
      dag { __typename ... on Dag { nodes { name external } edges { source target paths } mermaid } }
      status {
        __typename
        ... on PipelineStatus { upToDate stale stages { name upToDate changes { kind path key state } } }
        ... on Error { message }
      }
    }
    ... on NotFoundError { message }
  }
}
"""

DRY_RUN = """
mutation($id: ID!, $options: DryRunInput) {
  dryRunPipeline(id: $id, options: $options) {
    __typename
    ... on DryRunPlan {
      stages { name command certainty forced upstream changes { kind path key state } }
      upToDate
    }
    ... on Error { message }
    ... on ValidationError { issues { path message } }
  }
}
"""

DELETE_PIPELINE = """
mutation($id: ID!) {
  deletePipeline(id: $id) {
    __typename
    ... on PipelineDeleted { id name path removedStages }
    ... on Error { message }
  }
}
"""

VALIDATE = """
mutation($id: ID!) {
  validatePipeline(id: $id) {
    __typename
    ... on ValidationReport { valid issues { path message } }
    ... on Error { message }
  }
}
"""


def dvc_repro(root: Path, pipeline_path: str = "pipelines/ml/dvc.yaml") -> str:
    """The plain DVC CLI as the oracle: what a real run executes."""
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    command = [sys.executable, "-m", "dvc", "repro", pipeline_path]
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=True)
    return result.stdout


def executed_stages(repro_output: str) -> list[str]:
    prefix = "Running stage '"
    return [
        line.split(prefix, 1)[1].split("'", 1)[0].rpartition(":")[2]
        for line in repro_output.splitlines()
        if prefix in line
    ]


async def example_pipeline(gql: GraphQLClient, make_project: MakeProject) -> tuple[dict[str, Any], dict[str, Any]]:
    project = await make_project()
    await write_example_files(gql, project["id"])
    written = await create_pipeline(gql, project["id"])
    assert written["__typename"] == "PipelineWritten", written
    return project, written


async def test_create_writes_the_stages_to_their_own_dvc_yaml(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    project, written = await example_pipeline(gql, make_project)

    assert written["createdStages"] == ["prepare", "train", "evaluate"]
    assert written["failedStages"] == []
    assert written["validation"] == {"valid": True, "issues": []}
    assert written["pipeline"]["path"] == "pipelines/ml/dvc.yaml"
    assert written["pipeline"]["version"] == 1
    on_disk = yaml.safe_load((workspace_of(stack, project["id"]) / "pipelines/ml/dvc.yaml").read_text())
    assert list(on_disk["stages"]) == ["prepare", "train", "evaluate"]
    assert on_disk["stages"]["train"]["cmd"] == "python3 train.py"
    assert on_disk["stages"]["train"]["wdir"] == "../.."
    assert on_disk["stages"]["train"]["params"] == ["train.lr"]


async def test_dag_status_and_dry_run_of_a_new_pipeline(gql: GraphQLClient, make_project: MakeProject) -> None:
    _, written = await example_pipeline(gql, make_project)

    pipeline = (await gql.execute(INSPECT, {"id": written["pipeline"]["id"]}))["pipeline"]
    dag = pipeline["dag"]
    assert {(e["source"], e["target"]) for e in dag["edges"]} == {("prepare", "train"), ("train", "evaluate")}
    assert {n["name"] for n in dag["nodes"]} == {"prepare", "train", "evaluate"}
    assert dag["mermaid"].startswith("flowchart")
    assert "prepare" in dag["mermaid"] and "evaluate" in dag["mermaid"]

    status = pipeline["status"]
    assert status["__typename"] == "PipelineStatus"
    assert status["upToDate"] is False
    assert [s["name"] for s in status["stages"]] == ["prepare", "train", "evaluate"]
    assert all(not s["upToDate"] and s["changes"] for s in status["stages"])

    plan = (await gql.execute(DRY_RUN, {"id": written["pipeline"]["id"]}))["dryRunPipeline"]
    assert [(s["name"], s["certainty"]) for s in plan["stages"]] == [
        ("prepare", "WILL_RUN"),
        ("train", "WILL_RUN"),
        ("evaluate", "WILL_RUN"),
    ]
    assert plan["stages"][0]["command"] == "python3 prepare.py"


async def test_dry_run_names_every_downstream_stage_the_run_then_executes(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    project, written = await example_pipeline(gql, make_project)
    root = workspace_of(stack, project["id"])
    pipeline_id = written["pipeline"]["id"]
    dvc_repro(root)
    await write_file(gql, project["id"], "data.csv", "x,y\n1,2\n3,4\n5,6\n")

    plan = (await gql.execute(DRY_RUN, {"id": pipeline_id}))["dryRunPipeline"]
    status = (await gql.execute(INSPECT, {"id": pipeline_id}))["pipeline"]["status"]

    assert [(s["name"], s["certainty"]) for s in plan["stages"]] == [
        ("prepare", "WILL_RUN"),
        ("train", "IF_UPSTREAM_CHANGES"),
        ("evaluate", "IF_UPSTREAM_CHANGES"),
    ]
    assert {"kind": "DEP", "path": "data.csv", "key": None, "state": "modified"} in plan["stages"][0]["changes"]
    assert plan["stages"][1]["upstream"] == ["prepare"]
    assert [s["name"] for s in status["stages"] if not s["upToDate"]] == ["prepare"]

    executed = executed_stages(dvc_repro(root))
    planned = [s["name"] for s in plan["stages"]]
    assert executed, "the data change must make DVC run something"
    assert set(executed) <= set(planned)
    assert "prepare" in executed


async def test_status_reports_a_changed_parameter_with_its_key(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    project, written = await example_pipeline(gql, make_project)
    dvc_repro(workspace_of(stack, project["id"]))
    await write_file(gql, project["id"], "params.yaml", "train:\n  lr: 0.2\n")

    status = (await gql.execute(INSPECT, {"id": written["pipeline"]["id"]}))["pipeline"]["status"]

    changed = {s["name"]: s["changes"] for s in status["stages"] if not s["upToDate"]}
    assert list(changed) == ["train"]
    assert {"kind": "PARAM", "path": "params.yaml", "key": "train.lr", "state": "modified"} in changed["train"]


async def test_dry_run_options_force_targets_and_downstream(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    project, written = await example_pipeline(gql, make_project)
    dvc_repro(workspace_of(stack, project["id"]))
    pipeline_id = written["pipeline"]["id"]

    async def planned(options: dict[str, Any]) -> list[tuple[str, str]]:
        plan = (await gql.execute(DRY_RUN, {"id": pipeline_id, "options": options}))["dryRunPipeline"]
        assert plan["__typename"] == "DryRunPlan", plan
        return [(s["name"], s["certainty"]) for s in plan["stages"]]

    assert await planned({}) == []
    assert await planned({"force": True, "targets": ["train"]}) == [("prepare", "WILL_RUN"), ("train", "WILL_RUN")]
    assert await planned({"force": True, "targets": ["train"], "downstream": True}) == [
        ("train", "WILL_RUN"),
        ("evaluate", "WILL_RUN"),
    ]
    unknown = (await gql.execute(DRY_RUN, {"id": pipeline_id, "options": {"targets": ["nope"]}}))["dryRunPipeline"]
    assert unknown["__typename"] == "ValidationError"
    assert unknown["issues"][0]["path"] == "targets[0]"


async def test_update_replaces_the_stage_set_and_bumps_the_version(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    project, written = await example_pipeline(gql, make_project)
    pipeline_id = written["pipeline"]["id"]

    updated = (
        await gql.execute(UPDATE_PIPELINE, {"input": {"id": pipeline_id, "expectedVersion": 1, "stages": STAGES[:2]}})
    )["updatePipeline"]

    assert updated["__typename"] == "PipelineWritten", updated
    assert updated["pipeline"]["version"] == 2
    assert [s["name"] for s in updated["pipeline"]["stages"]] == ["prepare", "train"]
    on_disk = yaml.safe_load((workspace_of(stack, project["id"]) / "pipelines/ml/dvc.yaml").read_text())
    assert list(on_disk["stages"]) == ["prepare", "train"]

    stale = (
        await gql.execute(UPDATE_PIPELINE, {"input": {"id": pipeline_id, "expectedVersion": 1, "stages": STAGES}})
    )["updatePipeline"]
    assert stale["__typename"] == "ConflictError"
    assert "version 2" in stale["message"]


async def test_concurrent_updates_one_wins_the_other_conflicts(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, reliability: ReliabilityLog
) -> None:
    project, written = await example_pipeline(gql, make_project)
    pipeline_id = written["pipeline"]["id"]

    def update(stages: list[dict[str, Any]]) -> Awaitable[dict[str, Any]]:
        return gql.execute(UPDATE_PIPELINE, {"input": {"id": pipeline_id, "expectedVersion": 1, "stages": stages}})

    first, second = await asyncio.gather(update(STAGES[:1]), update(STAGES[:2]))

    kinds = sorted([first["updatePipeline"]["__typename"], second["updatePipeline"]["__typename"]])
    assert kinds == ["ConflictError", "PipelineWritten"]
    winner = next(
        r["updatePipeline"] for r in (first, second) if r["updatePipeline"]["__typename"] == "PipelineWritten"
    )
    on_disk = yaml.safe_load((workspace_of(stack, project["id"]) / "pipelines/ml/dvc.yaml").read_text())
    assert list(on_disk["stages"]) == [s["name"] for s in winner["pipeline"]["stages"]]
    reliability.record(
        "Faults",
        "two concurrent updates of one pipeline",
        tried="two updatePipeline calls at once, both with expectedVersion 1",
        observed="one PipelineWritten, one ConflictError; dvc.yaml holds exactly the winner's stages",
    )


async def test_delete_removes_the_dvc_stages_and_the_document(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, mongo: Any
) -> None:
    project, written = await example_pipeline(gql, make_project)
    pipeline_id = written["pipeline"]["id"]

    deleted = (await gql.execute(DELETE_PIPELINE, {"id": pipeline_id}))["deletePipeline"]

    assert deleted == {
        "__typename": "PipelineDeleted",
        "id": pipeline_id,
        "name": "ml",
        "path": "pipelines/ml/dvc.yaml",
        "removedStages": ["prepare", "train", "evaluate"],
    }
    assert not (workspace_of(stack, project["id"]) / "pipelines/ml/dvc.yaml").exists()
    assert mongo.pipelines.count_documents({"project_id": project["id"]}) == 0
    again = (await gql.execute(DELETE_PIPELINE, {"id": pipeline_id}))["deletePipeline"]
    assert again["__typename"] == "NotFoundError"


async def test_validate_stores_and_answers_the_report(gql: GraphQLClient, make_project: MakeProject) -> None:
    project, written = await example_pipeline(gql, make_project)
    pipeline_id = written["pipeline"]["id"]

    assert (await gql.execute(VALIDATE, {"id": pipeline_id}))["validatePipeline"] == {
        "__typename": "ValidationReport",
        "valid": True,
        "issues": [],
    }
    # Removing the params key that train reads makes the stored pipeline invalid.
    await write_file(gql, project["id"], "params.yaml", "other: 1\n")
    report = (await gql.execute(VALIDATE, {"id": pipeline_id}))["validatePipeline"]
    assert report["valid"] is False
    assert any("train.lr" in i["message"] for i in report["issues"])
    stored = (await gql.execute(INSPECT, {"id": pipeline_id}))["pipeline"]["validation"]
    assert stored == {"valid": False}


async def test_allow_partial_writes_the_good_stages_and_reports_the_bad(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    project = await make_project()
    await write_example_files(gql, project["id"])
    stages = [STAGES[0], {"name": "broken", "command": "   "}]

    written = await create_pipeline(gql, project["id"], stages=stages, allowPartial=True)

    assert written["__typename"] == "PipelineWritten", written
    assert written["createdStages"] == ["prepare"]
    assert [f["name"] for f in written["failedStages"]] == ["broken"]
    assert "command" in written["failedStages"][0]["error"]
    on_disk = yaml.safe_load((workspace_of(stack, project["id"]) / "pipelines/ml/dvc.yaml").read_text())
    assert list(on_disk["stages"]) == ["prepare"]


async def test_unknown_pipeline_is_not_found_everywhere(gql: GraphQLClient) -> None:
    unknown = "65f000000000000000000000"
    assert (await gql.execute(INSPECT, {"id": unknown}))["pipeline"]["__typename"] == "NotFoundError"
    assert (await gql.execute(DRY_RUN, {"id": unknown}))["dryRunPipeline"]["__typename"] == "NotFoundError"
    assert (await gql.execute(VALIDATE, {"id": unknown}))["validatePipeline"]["__typename"] == "NotFoundError"
    assert (await gql.execute(DELETE_PIPELINE, {"id": unknown}))["deletePipeline"]["__typename"] == "NotFoundError"
