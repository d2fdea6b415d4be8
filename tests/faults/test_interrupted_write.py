"""A worker killed (kill -9) in the middle of writing a pipeline leaves no half-written pipeline."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from tests.api.pipeline_fixtures import create_pipeline
from tests.conftest import CREATE_PROJECT, GraphQLClient, create_user_with_cli, workspace_of
from tests.faults.test_outages import private_stack
from tests.reliability import ReliabilityLog
from tests.stack import start_worker

CHAIN_LENGTH = 300
PIPELINE_NAMES = "query($p: ID!) { pipelines(projectId: $p) { ... on PipelineConnection { edges { node { name } } } } }"


def long_chain() -> list[dict[str, Any]]:
    # Long enough that checking it with DVC takes a moment, so the kill lands mid-write.
    return [
        {
            "name": f"s{i}",
            "command": f"echo {i} > f{i}.txt",
            "deps": [f"f{i - 1}.txt"] if i else [],
            "outs": [f"f{i}.txt"],
        }
        for i in range(CHAIN_LENGTH)
    ]


async def wait_for_file(path: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, "the write never reached the disk"
        await asyncio.sleep(0.002)  # polling interval of a deadline-bounded wait


async def write_after_the_lease_expires(user: GraphQLClient, project_id: str) -> dict[str, Any]:
    """The killed worker's workspace lease runs out within seconds; until then writes wait, as clients would."""
    other = [{"name": "after", "command": "echo a > a.txt", "outs": ["a.txt"]}]
    deadline = time.monotonic() + 60
    while True:
        answer = await create_pipeline(user, project_id, name="after", stages=other)
        if answer["__typename"] != "WorkerUnavailableError" or time.monotonic() > deadline:
            return answer


async def test_a_worker_killed_during_a_pipeline_write(tmp_path: Path, reliability: ReliabilityLog) -> None:
    with private_stack(tmp_path, JOB_WAIT_SECONDS="8") as (stack, _):
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
            user = GraphQLClient(http, create_user_with_cli(stack, "writer"), "writer")
            project = (await user.execute(CREATE_PROJECT, {"input": {"name": "w"}}))["createProject"]["project"]
            root = workspace_of(stack, project["id"])

            writing = asyncio.create_task(create_pipeline(user, project["id"], name="big", stages=long_chain()))
            # The dvc.yaml is on disk and the worker is validating it before storing the document: kill it now.
            await wait_for_file(root / "pipelines" / "big" / "dvc.yaml")
            stack.worker.kill()
            assert (root / "pipelines" / "big" / "dvc.yaml").exists()
            answer = await writing
            replacement = start_worker(stack.env, stack.log_dir, name="worker-after-kill")
            try:
                # The next write to the workspace settles what the killed worker left.
                follow_up = await write_after_the_lease_expires(user, project["id"])
                listed = await user.execute(PIPELINE_NAMES, {"p": project["id"]})
            finally:
                replacement.stop()

    assert answer["__typename"] == "WorkerUnavailableError", answer
    # ConflictError: an earlier attempt the client gave up on completed meanwhile, which is fine.
    assert follow_up["__typename"] in ("PipelineWritten", "ConflictError"), follow_up
    assert [e["node"]["name"] for e in listed["pipelines"]["edges"]] == ["after"]
    assert not (root / "pipelines" / "big" / "dvc.yaml").exists(), "the interrupted write was undone"
    assert not (root / ".dvc" / "tmp" / "service-journal" / "big.json").exists()
    reliability.record(
        "Faults",
        "worker kill -9 during a pipeline write",
        tried=f"kill -9 of the worker while it writes a {CHAIN_LENGTH}-stage pipeline",
        observed="the request answers WorkerUnavailableError; no document was stored and the next write to the "
        "workspace undid the partial dvc.yaml from the worker's undo log",
    )
