"""A GraphQL-over-HTTP client for the harness and the documents it sends."""

from __future__ import annotations

from typing import Any

import httpx

from bench.credentials import Credentials

CREATE_PROJECT = """
mutation($input: CreateProjectInput!) {
  createProject(input: $input) { __typename ... on ProjectCreated { project { id } } ... on Error { message } }
}
"""

WRITE_FILE = """
mutation($input: WriteFileInput!) {
  writeFile(input: $input) { __typename ... on Error { message } }
}
"""

CREATE_PIPELINE = """
mutation($input: CreatePipelineInput!) {
  createPipeline(input: $input) {
    __typename
    ... on PipelineWritten { pipeline { id } failedStages { name error } }
    ... on ValidationError { message issues { path message stage } }
    ... on Error { message }
  }
}
"""

STATUS = """
query($id: ID!) {
  pipeline(id: $id) {
    ... on Pipeline {
      status {
        __typename
        ... on PipelineStatus { upToDate stale stages { name upToDate changes { kind path key state } } }
        ... on Error { message }
      }
    }
  }
}
"""

DRY_RUN = """
mutation($id: ID!) {
  dryRunPipeline(id: $id, options: {force: false, targets: [], downstream: false}) {
    __typename
    ... on DryRunPlan { stages { name command certainty upstream changes { kind path key state } } upToDate }
    ... on Error { message }
  }
}
"""

EXECUTE = """
mutation($id: ID!, $options: ExecuteInput) {
  executePipeline(id: $id, options: $options) {
    __typename
    ... on RunQueued { run { id state } }
    ... on Error { message }
    ... on ValidationError { issues { path message } }
  }
}
"""

RUN_STATE = """
query($id: ID!) { run(id: $id) { ... on Run { state error stages { name state error } } } }
"""

RUN_UPDATES = """
subscription($runId: ID!, $after: Int) {
  runUpdates(runId: $runId, after: $after) { seq type at runState stage stageState text }
}
"""

RUN_UPDATE_BATCHES = """
subscription($runId: ID!, $after: Int) {
  runUpdateBatches(runId: $runId, after: $after) { lastSeq updates { seq type at runState stage stageState text } }
}
"""

LIST_PIPELINES = """
query($projectId: ID!, $first: Int!) {
  pipelines(projectId: $projectId, first: $first) {
    ... on PipelineConnection { edges { node { id name stages { name command deps outs } } } }
  }
}
"""


class GraphQLError(RuntimeError):
    pass


class GraphQLClient:
    """Posts GraphQL to the API as the harness's user; raises on top-level errors."""

    def __init__(self, http: httpx.AsyncClient, credentials: Credentials) -> None:
        self.http = http
        self.credentials = credentials

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=self.credentials.headers
        )
        if response.status_code != 200:
            raise GraphQLError(f"HTTP {response.status_code}: {response.text[:500]}")
        body = response.json()
        if body.get("errors"):
            raise GraphQLError(str(body["errors"])[:1000])
        data: dict[str, Any] = body["data"]
        return data

    async def expect(self, query: str, variables: dict[str, Any], field: str, typename: str) -> dict[str, Any]:
        """Execute and check the union member answered; return that field's object."""
        result: dict[str, Any] = (await self.execute(query, variables))[field]
        if result.get("__typename") != typename:
            raise GraphQLError(f"{field}: expected {typename}, got {result}")
        return result
