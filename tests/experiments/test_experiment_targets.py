"""runExperiment's `targets` (the stages to run with their upstream, as executePipeline's) and experiments' `state`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tests.conftest import GraphQLClient
from tests.experiments.fixtures import EXPERIMENT_FIELDS, experiment_finished, prepared_pipeline

MakeProject = Callable[..., Awaitable[dict[str, Any]]]

RUN_TARGETED = f"""
mutation($p: ID!, $set: [ParamOverrideInput!]!, $targets: [String!]) {{
  runExperiment(pipelineId: $p, setParams: $set, targets: $targets) {{
    __typename
    ... on ExperimentQueued {{ experiment {{ {EXPERIMENT_FIELDS} }} }}
    ... on ValidationError {{ issues {{ path message }} }}
    ... on Error {{ message }}
  }}
}}
"""

IN_STATE = """
query($p: ID!, $state: ExperimentState) {
  experiments(pipelineId: $p, state: $state) { ... on ExperimentConnection { edges { node { id state } } } }
}
"""

RUN_STAGES = """
query($id: ID!) { experiment(id: $id) { ... on Experiment { run { options { targets } stages { name state } } } } }
"""


async def test_an_experiment_runs_only_its_targets_and_their_upstream(
    gql: GraphQLClient, make_project: MakeProject
) -> None:
    _, pipeline_id = await prepared_pipeline(gql, make_project)
    change = [{"key": "train.lr", "value": "0.5"}]

    refused = (await gql.execute(RUN_TARGETED, {"p": pipeline_id, "set": change, "targets": ["nope"]}))[
        "runExperiment"
    ]
    assert refused["__typename"] == "ValidationError"
    assert [i["path"] for i in refused["issues"]] == ["targets[0]"]
    assert (await gql.execute(IN_STATE, {"p": pipeline_id, "state": None}))["experiments"]["edges"] == []

    queued = (await gql.execute(RUN_TARGETED, {"p": pipeline_id, "set": change, "targets": ["train"]}))[
        "runExperiment"
    ]
    assert queued["__typename"] == "ExperimentQueued", queued
    experiment_id = queued["experiment"]["id"]
    done = await experiment_finished(gql, experiment_id)
    assert done["state"] == "SUCCEEDED", done

    run = (await gql.execute(RUN_STAGES, {"id": experiment_id}))["experiment"]["run"]
    assert run["options"]["targets"] == ["train"]
    states = {s["name"]: s["state"] for s in run["stages"]}
    assert states.get("train") == "SUCCEEDED", states
    assert "evaluate" not in states, "downstream of the target: not part of the run"

    succeeded = (await gql.execute(IN_STATE, {"p": pipeline_id, "state": "SUCCEEDED"}))["experiments"]["edges"]
    assert [e["node"]["id"] for e in succeeded] == [experiment_id]
    assert (await gql.execute(IN_STATE, {"p": pipeline_id, "state": "FAILED"}))["experiments"]["edges"] == []
