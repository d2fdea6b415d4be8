"""The example 3-stage ML pipeline (prepare -> train -> evaluate) and the GraphQL documents tests share."""

from __future__ import annotations

from typing import Any

from tests.conftest import GraphQLClient

WRITE_FILE = """
mutation($input: WriteFileInput!) {
  writeFile(input: $input) {
    __typename
    ... on FileWritten { file { path kind size } }
    ... on Error { message }
    ... on ValidationError { issues { path message } }
  }
}
"""

PIPELINE_WRITE_FIELDS = """
    __typename
    ... on PipelineWritten {
      pipeline { id name path version stages { name command deps outs params metrics } }
      createdStages
      failedStages { name error }
      validation { valid issues { path message stage } }
    }
    ... on Error { message }
    ... on ValidationError { issues { path message stage } }
"""

CREATE_PIPELINE = f"""
mutation($input: CreatePipelineInput!) {{ createPipeline(input: $input) {{ {PIPELINE_WRITE_FIELDS} }} }}
"""

UPDATE_PIPELINE = f"""
mutation($input: UpdatePipelineInput!) {{ updatePipeline(input: $input) {{ {PIPELINE_WRITE_FIELDS} }} }}
"""

PREPARE_PY = """\
import csv, os
os.makedirs("data", exist_ok=True)
rows = list(csv.reader(open("data.csv")))
with open("data/prepared.csv", "w") as out:
    csv.writer(out).writerows(rows[1:])
"""

TRAIN_PY = """\
import re
# Standard library only: a stage gets its project's Python environment, never the service's packages (PyYAML).
params = {"lr": re.search(r"^\\s+lr:\\s*(\\S+)", open("params.yaml").read(), re.M).group(1)}
rows = open("data/prepared.csv").read().splitlines()
open("model.txt", "w").write(f"lr={params['lr']} rows={len(rows)}\\n")
"""

EVALUATE_STAGE_COMMAND = "python3 -c \"import json; json.dump({'rows': 2}, open('metrics.json', 'w'))\""

STAGES: list[dict[str, Any]] = [
    {
        "name": "prepare",
        "command": "python3 prepare.py",
        "deps": ["data.csv", "prepare.py"],
        "outs": ["data/prepared.csv"],
    },
    {
        "name": "train",
        "command": "python3 train.py",
        "deps": ["data/prepared.csv", "train.py"],
        "params": ["train.lr"],
        "outs": ["model.txt"],
    },
    {
        "name": "evaluate",
        "command": EVALUATE_STAGE_COMMAND,
        "deps": ["model.txt"],
        "metrics": ["metrics.json"],
    },
]


async def write_file(gql: GraphQLClient, project_id: str, path: str, content: str) -> None:
    result = (await gql.execute(WRITE_FILE, {"input": {"projectId": project_id, "path": path, "content": content}}))[
        "writeFile"
    ]
    assert result["__typename"] == "FileWritten", result


async def write_example_files(gql: GraphQLClient, project_id: str) -> None:
    await write_file(gql, project_id, "data.csv", "x,y\n1,2\n3,4\n")
    await write_file(gql, project_id, "prepare.py", PREPARE_PY)
    await write_file(gql, project_id, "train.py", TRAIN_PY)
    await write_file(gql, project_id, "params.yaml", "train:\n  lr: 0.1\n")


async def create_pipeline(
    gql: GraphQLClient, project_id: str, name: str = "ml", stages: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    variables = {
        "input": {"projectId": project_id, "name": name, "stages": STAGES if stages is None else stages, **extra}
    }
    result: dict[str, Any] = (await gql.execute(CREATE_PIPELINE, variables))["createPipeline"]
    return result
