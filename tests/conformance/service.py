"""The service's side of each comparison: the GraphQL calls a conformance check makes, with deadlines."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from tests.api.pipeline_fixtures import UPDATE_PIPELINE, WRITE_FILE
from tests.api.run_helpers import CANCEL, EXECUTE, FINISHED, GET_RUN
from tests.conftest import CREATE_PROJECT, GraphQLClient

RUN_SECONDS = 120.0
STALL_SECONDS = 30.0
STAGE_FIELDS = "name command deps outs params metrics plots frozen alwaysChanged wdir"

PIPELINES = f"""
query($id: ID!) {{
  project(id: $id) {{
    __typename
    ... on Project {{ pipelines(first: 100) {{ edges {{ node {{
      id name path version source validation {{ valid issues {{ path message stage }} }}
      stages {{ {STAGE_FIELDS} }}
    }} }} }} }}
  }}
}}
"""

STATUS = """
query($id: ID!) {
  pipeline(id: $id) {
    ... on Pipeline {
      status {
        __typename
        ... on PipelineStatus {
          upToDate stale
          stages { name upToDate frozen changes { kind path key state %s } }
        }
        ... on Error { message }
      }
    }
  }
}
"""

DAG = """
query($id: ID!) {
  pipeline(id: $id) {
    ... on Pipeline {
      dag { __typename ... on Dag { nodes { name external } edges { source target } } ... on Error { message } }
    }
  }
}
"""

CHANGE_FIELDS = """query { __type(name: "StageChange") { fields { name } } }"""
_CHANGE_FIELDS: dict[str, bool] = {}  # asked once per test session: the schema does not change under it

DRY_RUN = """
mutation($id: ID!, $options: DryRunInput) {
  dryRunPipeline(id: $id, options: $options) {
    __typename
    ... on DryRunPlan {
      stale upToDate
      stages { name command certainty forced upstream changes { kind path key state } }
    }
    ... on Error { message }
    ... on ValidationError { issues { path message stage } }
  }
}
"""


class RunNeverEnded(AssertionError):
    """A run did not reach a final state in time (and was cancelled)."""


class ServiceRefused(AssertionError):
    """The service answered a typed error (or a GraphQL error) where DVC went ahead."""


async def ask(gql: GraphQLClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The data of a GraphQL answer; its errors, briefly, as ServiceRefused."""
    response = await gql.post(query, variables)
    assert response.status_code == 200, response.text
    body = response.json()
    if body.get("errors"):
        raise ServiceRefused(f"GraphQL errors: {[e['message'] for e in body['errors']]}")
    data: dict[str, Any] = body["data"]
    return data


async def create_project(gql: GraphQLClient, repository: str) -> str:
    variables = {"input": {"name": f"conf-{uuid.uuid4().hex[:8]}", "repositoryUrl": repository}}
    result = (await ask(gql, CREATE_PROJECT, variables))["createProject"]
    if result["__typename"] != "ProjectCreated":
        raise ServiceRefused(f"createProject: {result}")
    assert result["project"]["state"] == "READY", result
    project_id: str = result["project"]["id"]
    return project_id


async def pipelines(gql: GraphQLClient, project_id: str) -> dict[str, dict[str, Any]]:
    """The project's pipelines by dvc.yaml path."""
    project = (await ask(gql, PIPELINES, {"id": project_id}))["project"]
    assert project["__typename"] == "Project", project
    return {edge["node"]["path"]: edge["node"] for edge in project["pipelines"]["edges"]}


async def status(gql: GraphQLClient, pipeline_id: str) -> dict[str, Any]:
    """The pipeline's status, with each change's ``stage`` (an UPSTREAM cause's name) where the schema has it."""
    if "stage" not in _CHANGE_FIELDS:
        fields = (await ask(gql, CHANGE_FIELDS, {}))["__type"]["fields"]
        _CHANGE_FIELDS["stage"] = any(f["name"] == "stage" for f in fields)
    query = STATUS % ("stage" if _CHANGE_FIELDS["stage"] else "")
    result: dict[str, Any] = (await ask(gql, query, {"id": pipeline_id}))["pipeline"]["status"]
    if result["__typename"] != "PipelineStatus":
        raise ServiceRefused(f"status: {result}")
    return result


async def dag(gql: GraphQLClient, pipeline_id: str) -> dict[str, Any]:
    result: dict[str, Any] = (await ask(gql, DAG, {"id": pipeline_id}))["pipeline"]["dag"]
    if result["__typename"] != "Dag":
        raise ServiceRefused(f"dag: {result}")
    return result


async def dry_run(gql: GraphQLClient, pipeline_id: str, options: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = (await ask(gql, DRY_RUN, {"id": pipeline_id, "options": options}))["dryRunPipeline"]
    if result["__typename"] != "DryRunPlan":
        raise ServiceRefused(f"dryRunPipeline{options}: {result}")
    return result


async def run(gql: GraphQLClient, pipeline_id: str, options: dict[str, Any]) -> dict[str, Any]:
    """Execute and wait for a final state. These runs take seconds: a run that shows no progress (its state and
    its stages' states unchanged) for STALL_SECONDS, or is not final after RUN_SECONDS, is cancelled (so it cannot
    hold the workspace for the checks after it) and RunNeverEnded fails the check with what was seen.
    """
    result = (await ask(gql, EXECUTE, {"id": pipeline_id, "options": options}))["executePipeline"]
    if result["__typename"] != "RunQueued":
        raise ServiceRefused(f"executePipeline{options}: {result}")
    run_id = result["run"]["id"]
    started = last_progress = time.monotonic()
    seen: tuple[Any, ...] = ()
    while True:
        current: dict[str, Any] = (await ask(gql, GET_RUN, {"id": run_id}))["run"]
        if current["state"] in FINISHED:
            return current
        now = time.monotonic()
        progress = (current["state"], *((s["name"], s["state"]) for s in current["stages"]))
        if progress != seen:
            seen, last_progress = progress, now
        if now - last_progress > STALL_SECONDS or now - started > RUN_SECONDS:
            cancelled = (await ask(gql, CANCEL, {"id": run_id}))["cancelRun"]
            raise RunNeverEnded(
                f"run {run_id} with {options} not final after {now - started:.0f}s, unchanged for "
                f"{now - last_progress:.0f}s: state {current['state']}, stages {list(progress[1:])}, "
                f"error {current['error']!r}; cancelRun answered {cancelled}"
            )
        await asyncio.sleep(0.1)  # polling interval of a deadline-bounded wait


async def write_file(gql: GraphQLClient, project_id: str, path: str, content: str) -> None:
    result = (await ask(gql, WRITE_FILE, {"input": {"projectId": project_id, "path": path, "content": content}}))[
        "writeFile"
    ]
    if result["__typename"] != "FileWritten":
        raise ServiceRefused(f"writeFile {path}: {result}")


async def update_stages(gql: GraphQLClient, pipeline: dict[str, Any], stages: list[dict[str, Any]]) -> dict[str, Any]:
    variables = {"input": {"id": pipeline["id"], "expectedVersion": pipeline["version"], "stages": stages}}
    result: dict[str, Any] = (await ask(gql, UPDATE_PIPELINE, variables))["updatePipeline"]
    if result["__typename"] != "PipelineWritten" or result["failedStages"]:
        raise ServiceRefused(f"updatePipeline: {result}")
    return result
