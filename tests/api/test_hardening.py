"""The GraphQL surface's limits, per-user rate limits, token caps, settings that close the surface, stage isolation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.api.pipeline_fixtures import create_pipeline
from tests.api.run_helpers import execute, finished
from tests.conftest import CREATE_PROJECT, GraphQLClient, create_user_with_cli, workspace_of
from tests.stack import Stack, running_stack

MakeProject = Callable[..., Awaitable[dict[str, Any]]]


def first_error(response: httpx.Response) -> str:
    message: str = response.json()["errors"][0]["message"]
    return message


async def test_query_depth_alias_and_token_limits(gql: GraphQLClient) -> None:
    # The deepest real path in the schema is 10 levels; it stays allowed.
    path = ["projects", "edges", "node", "pipelines", "edges", "node", "lastRun", "stages", "log"]
    deepest = "query { " + " { ".join(path) + " { ... on StageLog { text } " + "} " * (len(path) + 1)
    assert not (await gql.post(deepest)).json().get("errors")

    too_deep = "query { me " + "{ a " * 13 + "}" * 14
    assert "depth" in " ".join(e["message"] for e in (await gql.post(too_deep)).json()["errors"]).lower()

    aliases = "query { " + " ".join(f"a{i}: me {{ id }}" for i in range(31)) + " }"
    assert "aliases" in first_error(await gql.post(aliases)).lower()

    tokens = "query { " + "me { id } " * 1000 + "}"
    assert "token" in first_error(await gql.post(tokens)).lower()


async def test_page_sizes_are_capped(tmp_path: Path) -> None:
    # More items than the cap (MAX_PAGE_SIZE=2 here; 100 by default): the cap, not the data, bounds the page.
    with running_stack(tmp_path / "workspaces", tmp_path, MAX_PAGE_SIZE="2") as stack:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
            user = GraphQLClient(http, create_user_with_cli(stack, "pager"), "pager")
            for i in range(5):
                created = (await user.execute(CREATE_PROJECT, {"input": {"name": f"p{i}"}}))["createProject"]
                assert created["__typename"] == "ProjectCreated", created
            seen: list[str] = []
            after = None
            while True:
                page = (
                    await user.execute(
                        "query($after: String) { projects(first: 100000, after: $after) { "
                        "edges { cursor node { name } } pageInfo { hasNextPage endCursor } } }",
                        {"after": after},
                    )
                )["projects"]
                assert len(page["edges"]) <= 2, page
                seen += [e["node"]["name"] for e in page["edges"]]
                if not page["pageInfo"]["hasNextPage"]:
                    break
                after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == [f"p{i}" for i in range(5)]


async def test_stage_commands_do_not_see_the_workers_secrets(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    project = await make_project()
    written = await create_pipeline(
        gql, project["id"], stages=[{"name": "spy", "command": "env > env.txt", "outs": ["env.txt"]}]
    )
    run = await finished(gql, await execute(gql, written["pipeline"]["id"]))

    assert run["state"] == "SUCCEEDED"
    seen = (workspace_of(stack, project["id"]) / "env.txt").read_text()
    assert "MONGODB_URL" not in seen and "REDIS_URL" not in seen
    assert stack.env["MONGODB_URL"] not in seen


def same_instant(stored: str, created: str) -> bool:
    """MongoDB keeps milliseconds: a stored time is the created one, cut to the millisecond."""
    difference = datetime.fromisoformat(created) - datetime.fromisoformat(stored)
    return timedelta(0) <= difference < timedelta(milliseconds=1)


TOKEN = """
mutation($name: String!, $days: Int) {
  createApiToken(name: $name, expiresInDays: $days) {
    __typename
    ... on ApiTokenCreated { secret token { id expiresAt } }
    ... on ValidationError { message }
  }
}
"""


async def test_rate_limits_token_caps_introspection_and_graphiql_settings(tmp_path: Path) -> None:
    with running_stack(
        tmp_path / "workspaces",
        tmp_path,
        WORK_REQUESTS_PER_MINUTE="2",
        MAX_TOKENS_PER_USER="4",
        GRAPHQL_INTROSPECTION="false",
        GRAPHIQL="false",
    ) as stack:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
            user = GraphQLClient(http, create_user_with_cli(stack, "limited"), "limited")
            answers = [
                (await user.execute(CREATE_PROJECT, {"input": {"name": f"r{i}"}}))["createProject"]["__typename"]
                for i in range(3)
            ]
            assert answers == ["ProjectCreated", "ProjectCreated", "RateLimitedError"]
            limited = (await user.execute(CREATE_PROJECT, {"input": {"name": "r9"}}))["createProject"]
            assert limited["__typename"] == "RateLimitedError"
            # Reads are not limited; the limit counts per user, so another token of the same user is limited too.
            assert (await user.execute("query { me { name } }"))["me"]["name"] == "limited"
            another = (await user.execute(TOKEN, {"name": "ci"}))["createApiToken"]["secret"]
            fresh = GraphQLClient(http, another, "limited")
            again = (await fresh.execute(CREATE_PROJECT, {"input": {"name": "r10"}}))["createProject"]
            assert again["__typename"] == "RateLimitedError"
            other = GraphQLClient(http, create_user_with_cli(stack, "other"), "other")
            assert (await other.execute(CREATE_PROJECT, {"input": {"name": "o1"}}))["createProject"]["__typename"] == (
                "ProjectCreated"
            )

            # A token never outlives the token that made it.
            short = (await user.execute(TOKEN, {"name": "short", "days": 1}))["createApiToken"]
            from_short = GraphQLClient(http, short["secret"], "limited")
            child = (await from_short.execute(TOKEN, {"name": "child", "days": 30}))["createApiToken"]
            assert child["__typename"] == "ApiTokenCreated", child
            assert same_instant(child["token"]["expiresAt"], short["token"]["expiresAt"])
            # Four live tokens now (command line, ci, short, child): the cap.
            capped = (await user.execute(TOKEN, {"name": "fifth"}))["createApiToken"]
            assert capped["__typename"] == "ValidationError" and "at most 4" in capped["message"], capped
            revoke = "mutation($id: ID!) { revokeApiToken(id: $id) { __typename } }"
            assert (await user.execute(revoke, {"id": child["token"]["id"]}))["revokeApiToken"]["__typename"] == (
                "ApiToken"
            )
            unbounded = (await from_short.execute(TOKEN, {"name": "no-expiry-asked"}))["createApiToken"]
            assert unbounded["__typename"] == "ApiTokenCreated", unbounded
            assert same_instant(unbounded["token"]["expiresAt"], short["token"]["expiresAt"])

            introspection = await user.post("query { __schema { types { name } } }")
            assert "introspection" in first_error(introspection).lower()
            page = await http.get("/graphql", headers={"accept": "text/html"})
            assert page.status_code in (401, 404)


SET_LIMITS = """
mutation($p: ID!, $l: LimitsInput!) {
  setProjectLimits(projectId: $p, limits: $l) {
    __typename
    ... on LimitsChanged { project { limits { cpuSeconds memoryBytes openFiles fileSizeBytes logBytes } } }
    ... on ValidationError { issues { path message } }
  }
}
"""


async def test_project_limits_bound_each_stage_command(gql: GraphQLClient, make_project: MakeProject) -> None:
    project = await make_project()
    limits = {"cpuSeconds": 1, "memoryBytes": 256 * 1024**2, "logBytes": 65536}
    changed = (await gql.execute(SET_LIMITS, {"p": project["id"], "l": limits}))["setProjectLimits"]
    assert changed["__typename"] == "LimitsChanged"
    assert changed["project"]["limits"]["memoryBytes"] == 256 * 1024**2
    assert changed["project"]["limits"]["openFiles"] == 4096, "limits left out keep their value"
    stages = [
        {"name": "hog", "command": 'python3 -c "b = bytearray(1024**3)"', "outs": ["hog.txt"]},
        {"name": "spin", "command": 'python3 -c "while True: pass"', "outs": ["spin.txt"]},
        {
            "name": "chatty",
            "command": "python3 -c \"print('x' * 200000)\" > /dev/stderr; echo ok > c.txt",
            "outs": ["c.txt"],
        },
    ]
    written = await create_pipeline(gql, project["id"], stages=stages)

    run = await finished(gql, await execute(gql, written["pipeline"]["id"], keepGoing=True, maxParallel=3))

    by_name = {s["name"]: s for s in run["stages"]}
    assert by_name["hog"]["state"] == "FAILED" and "MemoryError" in by_name["hog"]["log"]["text"]
    assert by_name["spin"]["state"] == "FAILED"
    assert by_name["spin"]["cpuSeconds"] < 5
    assert by_name["chatty"]["state"] == "SUCCEEDED"
    log = (
        await gql.execute(
            "query($r: ID!) { run(id: $r) { ... on Run { stages { name logBytes "
            "log(limitBytes: 1000000) { ... on StageLog { text complete } } } } } }",
            {"r": run["id"]},
        )
    )["run"]["stages"]
    chatty = next(s for s in log if s["name"] == "chatty")
    assert "[log cut:" in chatty["log"]["text"]
    assert chatty["log"]["complete"] is True
    assert 65536 <= len(chatty["log"]["text"].encode()) == chatty["logBytes"] < 65536 + 200


async def test_limits_out_of_range_are_refused(gql: GraphQLClient, make_project: MakeProject) -> None:
    project = await make_project()
    refused = (await gql.execute(SET_LIMITS, {"p": project["id"], "l": {"memoryBytes": 1, "openFiles": 10**9}}))[
        "setProjectLimits"
    ]
    assert refused["__typename"] == "ValidationError"
    assert sorted(i["path"] for i in refused["issues"]) == ["limits.memoryBytes", "limits.openFiles"]
