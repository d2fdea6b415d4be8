"""Lists with their related documents (read through the per-request DataLoaders of schema/loaders.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tests.api.pipeline_fixtures import create_pipeline
from tests.api.run_helpers import execute, finished
from tests.conftest import GraphQLClient, MakeUser

MakeProject = Callable[..., Awaitable[dict[str, Any]]]

PIPELINES = """
query($p: ID!) {
  pipelines(projectId: $p) {
    ... on PipelineConnection {
      edges {
        node { id name lastRun { id state pipeline { id } } status { __typename ... on PipelineStatus { upToDate } } }
      }
    }
  }
}
"""

RUNS = """
query($p: ID!) {
  runs(projectId: $p) {
    ... on RunConnection { edges { node { id pipelineId pipeline { id name } project { id name } } } }
  }
}
"""

PROJECTS = "query { projects { edges { node { id pipelines { edges { node { id name } } } } } } }"


def stage(name: str) -> list[dict[str, Any]]:
    return [{"name": name, "command": f"echo {name} > {name}.txt", "outs": [f"{name}.txt"]}]


async def test_lists_resolve_their_related_documents(
    gql: GraphQLClient, make_project: MakeProject, make_user: MakeUser
) -> None:
    project = await make_project()
    other = await make_project()
    first = (await create_pipeline(gql, project["id"], "first", stage("a")))["pipeline"]
    second = (await create_pipeline(gql, project["id"], "second", stage("b")))["pipeline"]
    await create_pipeline(gql, other["id"], "third", stage("c"))
    runs = [await execute(gql, first["id"]), await execute(gql, second["id"]), await execute(gql, first["id"])]
    for run_id in runs:
        assert (await finished(gql, run_id))["state"] == "SUCCEEDED"

    listed = (await gql.execute(PIPELINES, {"p": project["id"]}))["pipelines"]["edges"]
    by_name = {e["node"]["name"]: e["node"] for e in listed}
    assert by_name["first"]["lastRun"]["id"] == runs[2]
    assert by_name["first"]["lastRun"]["pipeline"]["id"] == first["id"]
    assert by_name["second"]["lastRun"]["id"] == runs[1]
    assert all(node["status"]["__typename"] == "PipelineStatus" for node in by_name.values())

    nodes = [e["node"] for e in (await gql.execute(RUNS, {"p": project["id"]}))["runs"]["edges"]]
    assert [n["id"] for n in nodes] == list(reversed(runs))
    for node in nodes:
        assert node["pipeline"]["id"] == node["pipelineId"]
        assert node["project"] == {"id": project["id"], "name": project["name"]}
    assert {n["pipeline"]["name"] for n in nodes} == {"first", "second"}

    projects = {e["node"]["id"]: e["node"] for e in (await gql.execute(PROJECTS))["projects"]["edges"]}
    assert sorted(p["node"]["name"] for p in projects[project["id"]]["pipelines"]["edges"]) == ["first", "second"]
    assert [p["node"]["name"] for p in projects[other["id"]]["pipelines"]["edges"]] == ["third"]

    # Someone else sees none of it, through any of these paths.
    stranger = await make_user()
    response = (await stranger.post(RUNS, {"p": project["id"]})).json()
    assert response["data"]["runs"].get("edges") is None
    assert (await stranger.execute(PROJECTS))["projects"]["edges"] == []
