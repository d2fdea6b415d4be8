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
    "NUL in a stage name": ([stage(name="a\0b")], "stages[0].name"),
    "control character in a stage name": ([stage(name="a\x1bb")], "stages[0].name"),
    "100,000-character stage name": ([stage(name="s" * 100_000)], "stages[0].name"),
    "201-character stage name": ([stage(name="s" * 201)], "stages[0].name"),
    "NUL in a command": ([stage(command="echo a\0b")], "stages[0].command"),
    "NUL in an output path": ([stage(outs=["a\0b"])], "stages[0].outs[0]"),
    "5,000-character dependency path": ([stage(deps=["d" * 5000])], "stages[0].deps[0]"),
    "10,000 stages": ([stage(name=f"s{i}", outs=[f"o{i}"]) for i in range(10_000)], "stages"),
    "501 stages": ([stage(name=f"s{i}", outs=[f"o{i}"]) for i in range(501)], "stages"),
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


MALFORMED_BODIES = {
    "invalid UTF-8": b'{"query": "{ __typename }", "x": "\xff\xfe"}',
    "a JSON string": b'"{ __typename }"',
    "a JSON array": b'[{"query": "{ __typename }"}]',
    "a JSON number": b"42",
    "JSON null": b"null",
    "not JSON": b"{ __typename }",
}


@pytest.mark.parametrize("case", list(MALFORMED_BODIES))
async def test_malformed_request_bodies_answer_400_with_a_graphql_error(
    case: str, gql: GraphQLClient, reliability: ReliabilityLog
) -> None:
    headers = {**gql.headers, "content-type": "application/json"}
    response = await gql.http.post("/graphql", content=MALFORMED_BODIES[case], headers=headers)

    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    errors = response.json()["errors"]
    assert errors[0]["message"] and errors[0]["extensions"]["code"] == "BAD_REQUEST", errors
    still_fine = await gql.post("{ __typename }")
    assert still_fine.status_code == 200 and still_fine.json()["data"] == {"__typename": "Query"}
    reliability.record(
        "Bad input: malformed requests",
        case,
        tried=f"POST /graphql with a body that is {case}",
        observed=f"HTTP {response.status_code} with a GraphQL error: {errors[0]['message'][:120]}",
    )


MALFORMED_MULTIPART = {
    "operations a JSON string": {"operations": '"x"', "map": "{}"},
    "operations a JSON array": {"operations": "[1]", "map": "{}"},
    "operations not JSON": {"operations": "{bad", "map": "{}"},
    "map a JSON string": {"operations": '{"query": "{ __typename }"}', "map": '"x"'},
    "map pointing nowhere": {"operations": '{"query": "{ __typename }"}', "map": '{"0": ["variables.nope.deeper"]}'},
}


@pytest.mark.parametrize("case", list(MALFORMED_MULTIPART))
async def test_malformed_multipart_requests_answer_400_with_a_graphql_error(case: str, gql: GraphQLClient) -> None:
    response = await gql.http.post(
        "/graphql", data=MALFORMED_MULTIPART[case], files={"0": ("a.bin", b"x")}, headers=gql.headers
    )

    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json"), response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_oversized_requests_are_refused_before_parsing(gql: GraphQLClient) -> None:
    huge = "x" * (2 * 1024 * 1024)
    response = await gql.post("query { projects { edges { cursor } } }", {"padding": huge})
    assert response.status_code == 413
    assert "exceeds" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("name", ["a\0b", "tab\there", "x" * 101, "   "])
async def test_token_names_with_control_characters_or_too_long_are_refused(name: str, gql: GraphQLClient) -> None:
    before = (await gql.execute("query { apiTokens { id } }"))["apiTokens"]
    result = (
        await gql.execute(
            "mutation($n: String!) { createApiToken(name: $n) { "
            "__typename ... on ValidationError { issues { path } } } }",
            {"n": name},
        )
    )["createApiToken"]
    assert result == {"__typename": "ValidationError", "issues": [{"path": "name"}]}
    assert (await gql.execute("query { apiTokens { id } }"))["apiTokens"] == before
