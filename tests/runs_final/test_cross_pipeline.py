"""Runs across pipelines: B's stage depends on an output of A's, so running B runs A's stage when it is stale, as
`dvc repro pipelines/B/dvc.yaml` does; the workspace ends exactly as that command leaves a copy of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.pipeline_fixtures import create_pipeline, write_file
from tests.api.run_helpers import execute, finished
from tests.conftest import GraphQLClient, workspace_of
from tests.runs_final.conftest import dvc_cli, lock_files, new_project, oracle_copy
from tests.stack import Stack

A_PATH = "pipelines/A/dvc.yaml"
B_PATH = "pipelines/B/dvc.yaml"
A_STAGE = f"{A_PATH}:make_out"
A = [{"name": "make_out", "command": "cat src.txt > a.txt", "deps": ["src.txt"], "outs": ["a.txt"]}]
B = [{"name": "use", "command": "cat a.txt a.txt > b.txt", "deps": ["a.txt"], "outs": ["b.txt"]}]


async def two_pipelines(user: GraphQLClient) -> tuple[str, str, str]:
    """A project with pipelines A and B, B depending on A's output; (project, A's id, B's id)."""
    project_id = await new_project(user, "cross")
    await write_file(user, project_id, "src.txt", "from a\n")
    a = await create_pipeline(user, project_id, name="A", stages=A)
    b = await create_pipeline(user, project_id, name="B", stages=B)
    assert a["__typename"] == b["__typename"] == "PipelineWritten", (a, b)
    assert (a["pipeline"]["path"], b["pipeline"]["path"]) == (A_PATH, B_PATH)
    return project_id, a["pipeline"]["id"], b["pipeline"]["id"]


def ran_by_dvc(output: str) -> set[str]:
    """The stages `dvc repro` ran, by their full address."""
    prefix = "Running stage '"
    return {line.split(prefix, 1)[1].split("'", 1)[0] for line in output.splitlines() if prefix in line}


def ran_by_run(run: dict[str, Any], pipeline_path: str) -> set[str]:
    return {
        s["name"] if ":" in s["name"] else f"{pipeline_path}:{s['name']}"
        for s in run["stages"]
        if s["state"] == "SUCCEEDED"
    }


async def run_and_compare(
    user: GraphQLClient, stack: Stack, project_id: str, pipeline_id: str, oracle: Path, *repro: str, **options: Any
) -> dict[str, Any]:
    """Copy the workspace, run the pipeline through the API and `dvc repro <repro>` on the copy; both must agree."""
    root = workspace_of(stack, project_id)
    oracle_copy(root, oracle)
    run = await finished(user, await execute(user, pipeline_id, **options), seconds=120)
    oracle_output = dvc_cli(oracle, "repro", *repro)

    assert run["state"] == "SUCCEEDED", run
    assert lock_files(root) == lock_files(oracle)
    for output in ("a.txt", "b.txt"):
        assert (root / output).read_text() == (oracle / output).read_text()
    pipeline_path = repro[-1]
    assert ran_by_run(run, pipeline_path) == ran_by_dvc(oracle_output), (run["stages"], oracle_output)
    return run


async def test_running_b_runs_the_stale_stage_of_a_first(stack: Stack, users_of: Any, tmp_path: Path) -> None:
    user = users_of(stack).make()
    project_id, _, b_id = await two_pipelines(user)

    run = await run_and_compare(user, stack, project_id, b_id, tmp_path / "oracle", B_PATH)

    assert [(s["name"], s["state"]) for s in run["stages"]] == [(A_STAGE, "SUCCEEDED"), ("use", "SUCCEEDED")]


async def test_running_b_with_a_up_to_date_runs_only_b(stack: Stack, users_of: Any, tmp_path: Path) -> None:
    user = users_of(stack).make()
    project_id, a_id, b_id = await two_pipelines(user)
    assert (await finished(user, await execute(user, a_id), seconds=120))["state"] == "SUCCEEDED"

    run = await run_and_compare(user, stack, project_id, b_id, tmp_path / "oracle", B_PATH)

    assert ran_by_run(run, B_PATH) == {f"{B_PATH}:use"}
    # Once more, with A's input changed: A's stage is stale again and runs first.
    await write_file(user, project_id, "src.txt", "changed\n")
    again = await run_and_compare(user, stack, project_id, b_id, tmp_path / "oracle-again", B_PATH)
    assert ran_by_run(again, B_PATH) == {A_STAGE, f"{B_PATH}:use"}


async def test_running_a_downstream_runs_b_after_it(stack: Stack, users_of: Any, tmp_path: Path) -> None:
    user = users_of(stack).make()
    project_id, a_id, _ = await two_pipelines(user)

    run = await run_and_compare(
        user, stack, project_id, a_id, tmp_path / "oracle", "--downstream", A_PATH, downstream=True
    )

    assert ran_by_run(run, A_PATH) == {A_STAGE, f"{B_PATH}:use"}
