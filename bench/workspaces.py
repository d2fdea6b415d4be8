"""Synthetic workspaces, created through the API itself: projects, input files, pipelines of generated stages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from bench.gql import CREATE_PIPELINE, CREATE_PROJECT, WRITE_FILE, GraphQLClient

Stage = dict[str, Any]

EMITTER = """\
import os, sys, time
name, seconds, interval = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
os.makedirs("fanout/ready", exist_ok=True)
open(os.path.join("fanout/ready", name), "w").close()
deadline = time.time() + 300
while not os.path.exists("fanout/go") and time.time() < deadline:
    time.sleep(0.005)
end, count = time.time() + seconds, 0
while time.time() < end:
    print(f"{name} line {count}", flush=True)
    count += 1
    time.sleep(interval)
os.makedirs("fanout/out", exist_ok=True)
open(f"fanout/out/{name}.txt", "w").write(str(count))
"""


@dataclass(frozen=True, slots=True)
class Workspace:
    project_id: str
    pipeline_id: str
    pipeline_path: str
    """The dvc.yaml, relative to the workspace root: what the CLI baseline targets."""
    stage_names: list[str]


async def new_project(gql: GraphQLClient) -> str:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    result = await gql.expect(CREATE_PROJECT, {"input": {"name": name}}, "createProject", "ProjectCreated")
    project_id: str = result["project"]["id"]
    return project_id


async def write_file(gql: GraphQLClient, project_id: str, path: str, content: str) -> None:
    variables = {"input": {"projectId": project_id, "path": path, "content": content}}
    await gql.expect(WRITE_FILE, variables, "writeFile", "FileWritten")


async def create_pipeline(gql: GraphQLClient, project_id: str, name: str, stages: list[Stage]) -> str:
    variables = {"input": {"projectId": project_id, "name": name, "stages": stages}}
    result = await gql.expect(CREATE_PIPELINE, variables, "createPipeline", "PipelineWritten")
    if result["failedStages"]:
        raise RuntimeError(f"stages refused: {result['failedStages']}")
    pipeline_id: str = result["pipeline"]["id"]
    return pipeline_id


def chain_stages(count: int, folder: str) -> list[Stage]:
    """``count`` trivial stages, each copying the previous one's output: s001 <- input.txt, s002 <- s001, ..."""
    stages: list[Stage] = []
    previous = f"{folder}/input.txt"
    for index in range(1, count + 1):
        out = f"{folder}/s{index:03d}.txt"
        stages.append({"name": f"s{index:03d}", "command": f"cp {previous} {out}", "deps": [previous], "outs": [out]})
        previous = out
    return stages


def wide_stages(branches: int, sleep_seconds: float, folder: str) -> list[Stage]:
    """``branches`` independent `sleep` stages, then one stage that depends on all of them."""
    stages: list[Stage] = []
    outs = []
    for index in range(1, branches + 1):
        out = f"{folder}/w{index:02d}.txt"
        outs.append(out)
        stages.append(
            {
                "name": f"w{index:02d}",
                "command": f"sleep {sleep_seconds:g} && echo {index} > {out}",
                "deps": [f"{folder}/input.txt"],
                "outs": [out],
            }
        )
    final = f"{folder}/final.txt"
    stages.append({"name": "final", "command": f"cat {' '.join(outs)} > {final}", "deps": outs, "outs": [final]})
    return stages


def emitter_stages(count: int, seconds: float, interval: float) -> list[Stage]:
    """``count`` independent stages printing a line every ``interval`` for ``seconds`` once `fanout/go` exists."""
    return [
        {
            "name": f"e{index:02d}",
            "command": f"python3 emit.py e{index:02d} {seconds:g} {interval:g}",
            "deps": ["emit.py"],
            "outs": [f"fanout/out/e{index:02d}.txt"],
        }
        for index in range(1, count + 1)
    ]


async def chain_workspace(gql: GraphQLClient, stages: int) -> Workspace:
    project_id = await new_project(gql)
    await write_file(gql, project_id, "chain/input.txt", "0\n")
    specs = chain_stages(stages, "chain")
    pipeline_id = await create_pipeline(gql, project_id, "chain", specs)
    return Workspace(project_id, pipeline_id, "pipelines/chain/dvc.yaml", [s["name"] for s in specs])


async def wide_workspace(gql: GraphQLClient, branches: int, sleep_seconds: float) -> Workspace:
    project_id = await new_project(gql)
    await write_file(gql, project_id, "wide/input.txt", "0\n")
    specs = wide_stages(branches, sleep_seconds, "wide")
    pipeline_id = await create_pipeline(gql, project_id, "wide", specs)
    return Workspace(project_id, pipeline_id, "pipelines/wide/dvc.yaml", [s["name"] for s in specs])


async def emitter_workspace(gql: GraphQLClient, stages: int, seconds: float, interval: float) -> Workspace:
    project_id = await new_project(gql)
    await write_file(gql, project_id, "emit.py", EMITTER)
    specs = emitter_stages(stages, seconds, interval)
    pipeline_id = await create_pipeline(gql, project_id, "fanout", specs)
    return Workspace(project_id, pipeline_id, "pipelines/fanout/dvc.yaml", [s["name"] for s in specs])


async def list_project(gql: GraphQLClient, pipelines: int, stages: int) -> str:
    """A project with ``pipelines`` pipelines of ``stages`` chained stages each."""
    project_id = await new_project(gql)
    for index in range(1, pipelines + 1):
        folder = f"list/p{index:02d}"
        await write_file(gql, project_id, f"{folder}/input.txt", "0\n")
        await create_pipeline(gql, project_id, f"p{index:02d}", chain_stages(stages, folder))
    return project_id
