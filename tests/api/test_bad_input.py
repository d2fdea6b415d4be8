"""Every bad input answers a typed error, and the documents and workspace files stay exactly as they were."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.api.pipeline_fixtures import STAGES, UPDATE_PIPELINE, create_pipeline, write_example_files
from tests.conftest import GraphQLClient, tree_digest, workspace_of
from tests.reliability import ReliabilityLog
from tests.stack import Stack

MakeProject = Callable[..., Awaitable[dict[str, Any]]]

PREPARE, TRAIN, EVALUATE = STAGES


def stage(**fields: Any) -> dict[str, Any]:
    return {"name": "s", "command": "echo hi", **fields}


BAD_STAGE_SETS: dict[str, tuple[list[dict[str, Any]], str]] = {
    "empty stage list": ([], "stages"),
    "empty stage name": ([stage(name="")], "stages[0].name"),
    "duplicate stage names": ([stage(outs=["a"]), stage(outs=["b"])], "stages[1].name"),
    "name DVC rejects": ([stage(name="bad.name")], "stages[0].name"),
    "empty command": ([stage(command="  ")], "stages[0].command"),
    "dependency cycle": (
        [stage(name="a", deps=["y"], outs=["x"]), stage(name="b", deps=["x"], outs=["y"])],
        "stages",
    ),
    "two stages with one output": ([stage(name="a", outs=["o"]), stage(name="b", outs=["o"])], "stages"),
    "output inside another output": (
        [stage(name="a", outs=["out"]), stage(name="b", outs=["out/inner.txt"])],
        "stages",
    ),
    "absolute path": ([stage(deps=["/etc/passwd"])], "stages[0].deps[0]"),
    "path leaving the workspace": ([stage(outs=["../../elsewhere"])], "stages[0].outs[0]"),
    "path into .git": ([stage(outs=[".git/hooks/pre-commit"])], "stages[0].outs[0]"),
    "symlink leading out": ([stage(deps=["outside/secret"])], "stages[0].deps[0]"),
    "params file missing": ([stage(params=["missing.yaml:lr"])], "stages[0].params[0]"),
    "params key missing": ([stage(params=["train.momentum"])], "stages[0].params[0]"),
}


def issue_paths(result: dict[str, Any]) -> list[str]:
    return [i["path"] for i in result["issues"]]


@pytest.mark.parametrize("case", list(BAD_STAGE_SETS))
async def test_bad_stage_sets_change_nothing(
    case: str, gql: GraphQLClient, make_project: MakeProject, stack: Stack, mongo: Any, reliability: ReliabilityLog
) -> None:
    stages, expected_path = BAD_STAGE_SETS[case]
    project = await make_project()
    await write_example_files(gql, project["id"])
    root = workspace_of(stack, project["id"])
    (root / "outside").symlink_to("/tmp")
    files_before = tree_digest(root)
    documents_before = list(mongo.pipelines.find({"project_id": project["id"]}))

    result = await create_pipeline(gql, project["id"], stages=stages)

    assert result["__typename"] == "ValidationError", result
    assert any(path.startswith(expected_path) for path in issue_paths(result)), (expected_path, result["issues"])
    assert result["message"]
    assert tree_digest(root) == files_before
    assert list(mongo.pipelines.find({"project_id": project["id"]})) == documents_before
    reliability.record(
        "Bad input: pipeline definitions",
        case,
        tried=f"createPipeline with {case} ({stages!r:.120})",
        observed=f"{result['__typename']} at {', '.join(sorted(set(issue_paths(result))))}: {result['message'][:140]}; "
        "documents and workspace files unchanged",
    )


async def test_a_bad_update_leaves_the_pipeline_as_it_was(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, mongo: Any
) -> None:
    project = await make_project()
    await write_example_files(gql, project["id"])
    written = await create_pipeline(gql, project["id"])
    root = workspace_of(stack, project["id"])
    files_before = tree_digest(root)
    document_before = mongo.pipelines.find_one({"project_id": project["id"]})

    cyclic = [PREPARE | {"deps": ["data.csv", "model.txt"]}, TRAIN]
    result = (
        await gql.execute(
            UPDATE_PIPELINE, {"input": {"id": written["pipeline"]["id"], "expectedVersion": 1, "stages": cyclic}}
        )
    )["updatePipeline"]

    assert result["__typename"] == "ValidationError", result
    assert "cycle" in result["message"].lower()
    assert tree_digest(root) == files_before
    assert mongo.pipelines.find_one({"project_id": project["id"]}) == document_before


async def test_duplicate_and_invalid_pipeline_names(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, mongo: Any
) -> None:
    project = await make_project()
    await write_example_files(gql, project["id"])
    await create_pipeline(gql, project["id"], name="ml")
    root = workspace_of(stack, project["id"])
    files_before = tree_digest(root)

    duplicate = await create_pipeline(gql, project["id"], name="ml")
    invalid = await create_pipeline(gql, project["id"], name="../ml")

    assert duplicate["__typename"] == "ConflictError"
    assert invalid["__typename"] == "ValidationError"
    assert issue_paths(invalid) == ["name"]
    assert tree_digest(root) == files_before
    assert mongo.pipelines.count_documents({"project_id": project["id"]}) == 1


async def test_pipeline_in_unknown_project_is_not_found(gql: GraphQLClient, mongo: Any) -> None:
    before = mongo.pipelines.count_documents({})
    result = await create_pipeline(gql, "65f000000000000000000000")
    assert result["__typename"] == "NotFoundError"
    assert mongo.pipelines.count_documents({}) == before


async def test_malformed_graphql_is_a_clear_error_not_a_crash(gql: GraphQLClient) -> None:
    response = await gql.post("mutation { createPipeline(input: { ")
    assert response.status_code in (200, 400)
    assert "Syntax Error" in response.json()["errors"][0]["message"]

    response = await gql.post("query { noSuchField }")
    assert response.status_code == 200
    assert "Cannot query field 'noSuchField'" in response.json()["errors"][0]["message"]


async def test_oversized_requests_are_refused_before_parsing(gql: GraphQLClient) -> None:
    huge = "x" * (2 * 1024 * 1024)
    response = await gql.post("query { projects { edges { cursor } } }", {"padding": huge})
    assert response.status_code == 413
    assert "exceeds" in response.json()["errors"][0]["message"]
