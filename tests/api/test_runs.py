"""Runs end to end on the real stack: exact states, logs, figures, reruns, failures, options."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml
from bson import ObjectId

from tests.api.pipeline_fixtures import create_pipeline, write_example_files, write_file
from tests.api.run_helpers import CANCEL, execute, finished, follow, get_run, stage_states, wait_for_run
from tests.conftest import GraphQLClient, workspace_of
from tests.processes import stage_pid
from tests.stack import Stack

MakeProject = Callable[..., Awaitable[dict[str, Any]]]
QUICK_STAGE = {"name": "quick", "command": "echo done > quick.txt", "outs": ["quick.txt"]}


def is_running(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped by whoever adopted it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


async def example(gql: GraphQLClient, make_project: MakeProject) -> tuple[dict[str, Any], str]:
    project = await make_project()
    await write_example_files(gql, project["id"])
    written = await create_pipeline(gql, project["id"])
    assert written["__typename"] == "PipelineWritten", written
    return project, written["pipeline"]["id"]


async def pipeline_of(
    gql: GraphQLClient, make_project: MakeProject, stages: list[dict[str, Any]]
) -> tuple[dict[str, Any], str]:
    project = await make_project()
    written = await create_pipeline(gql, project["id"], stages=stages)
    assert written["__typename"] == "PipelineWritten", written
    return project, written["pipeline"]["id"]


async def test_a_run_streams_every_change_and_ends_succeeded(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    project, pipeline_id = await example(gql, make_project)

    run_id = await execute(gql, pipeline_id)
    updates = await follow(stack.base_url, gql, run_id)

    assert updates[0]["type"] == "SNAPSHOT"
    seqs = [u["seq"] for u in updates[1:]]
    assert seqs == list(range(updates[0]["seq"] + 1, updates[0]["seq"] + 1 + len(seqs))), "gap-free and in order"
    assert updates[-1]["type"] == "RUN_STATE" and updates[-1]["runState"] == "SUCCEEDED"
    transitions = [(u["stage"], u["stageState"]) for u in updates if u["type"] == "STAGE_STATE"]
    for stage in ("prepare", "train", "evaluate"):
        assert transitions.index((stage, "RUNNING")) < transitions.index((stage, "SUCCEEDED"))
    assert transitions.index(("prepare", "SUCCEEDED")) < transitions.index(("train", "RUNNING"))
    logs = "".join(u["text"] for u in updates if u["type"] == "LOG" and u["stage"] == "prepare")
    assert "Running stage" in logs and "python3 prepare.py" in logs

    run = await get_run(gql, run_id)
    assert run["state"] == "SUCCEEDED"
    assert run["counts"] == {"succeeded": 3, "failed": 0, "skipped": 0, "notRun": 0, "cancelled": 0}
    assert {"data/prepared.csv", "model.txt"} <= set(run["outputsChanged"])
    for stage in run["stages"]:
        assert stage["exitCode"] == 0
        assert stage["cpuSeconds"] is not None and stage["peakMemoryBytes"] > 0
        assert stage["durationSeconds"] >= 0
        assert stage["log"]["complete"] is True
    assert "python3 train.py" in run["stages"][1]["log"]["text"]
    lock = yaml.safe_load((workspace_of(stack, project["id"]) / "pipelines/ml/dvc.lock").read_text())
    assert set(lock["stages"]) == {"prepare", "train", "evaluate"}


async def test_second_run_skips_everything_and_a_param_change_reruns_downstream(
    gql: GraphQLClient, make_project: MakeProject
) -> None:
    project, pipeline_id = await example(gql, make_project)
    assert (await finished(gql, await execute(gql, pipeline_id)))["state"] == "SUCCEEDED"

    again = await finished(gql, await execute(gql, pipeline_id))
    assert again["state"] == "SUCCEEDED"
    assert stage_states(again) == {"prepare": "SKIPPED", "train": "SKIPPED", "evaluate": "SKIPPED"}

    await write_file(gql, project["id"], "params.yaml", "train:\n  lr: 0.5\n")
    changed = await finished(gql, await execute(gql, pipeline_id))
    assert stage_states(changed) == {"prepare": "SKIPPED", "train": "SUCCEEDED", "evaluate": "SUCCEEDED"}


async def test_force_and_targets(gql: GraphQLClient, make_project: MakeProject) -> None:
    _, pipeline_id = await example(gql, make_project)
    await finished(gql, await execute(gql, pipeline_id))

    forced = await finished(gql, await execute(gql, pipeline_id, force=True, targets=["train"]))

    assert stage_states(forced) == {"prepare": "SUCCEEDED", "train": "SUCCEEDED"}
    assert forced["options"]["targets"] == ["train"]


async def test_a_failing_stage_fails_the_run_and_its_downstream_is_not_run(
    gql: GraphQLClient, make_project: MakeProject
) -> None:
    _, pipeline_id = await pipeline_of(
        gql,
        make_project,
        [
            {"name": "broken", "command": "echo about to fail; exit 3", "outs": ["a.txt"]},
            {"name": "after", "command": "cp a.txt b.txt", "deps": ["a.txt"], "outs": ["b.txt"]},
        ],
    )

    run = await finished(gql, await execute(gql, pipeline_id))

    assert run["state"] == "FAILED"
    assert "broken" in run["error"]
    states = {s["name"]: s for s in run["stages"]}
    assert states["broken"]["state"] == "FAILED"
    assert states["broken"]["exitCode"] != 0
    assert "about to fail" in states["broken"]["log"]["text"]
    assert states["after"]["state"] == "NOT_RUN"


async def test_keep_going_runs_independent_branches_after_a_failure(
    gql: GraphQLClient, make_project: MakeProject
) -> None:
    stages = [
        {"name": "broken", "command": "exit 1", "outs": ["a.txt"]},
        {"name": "after", "command": "cp a.txt b.txt", "deps": ["a.txt"], "outs": ["b.txt"]},
        {"name": "independent", "command": "echo ok > c.txt", "outs": ["c.txt"]},
    ]
    _, pipeline_id = await pipeline_of(gql, make_project, stages)

    run = await finished(gql, await execute(gql, pipeline_id, keepGoing=True, maxParallel=1))

    assert run["state"] == "FAILED"
    assert stage_states(run) == {"broken": "FAILED", "after": "NOT_RUN", "independent": "SUCCEEDED"}


async def test_independent_stages_run_in_parallel(gql: GraphQLClient, make_project: MakeProject, stack: Stack) -> None:
    stages = [
        {"name": f"branch{i}", "command": f"sleep 1 && echo {i} > out{i}.txt", "outs": [f"out{i}.txt"]}
        for i in range(2)
    ] + [
        {
            "name": "join",
            "command": "cat out0.txt out1.txt > all.txt",
            "deps": ["out0.txt", "out1.txt"],
            "outs": ["all.txt"],
        }
    ]
    project, pipeline_id = await pipeline_of(gql, make_project, stages)

    run = await finished(gql, await execute(gql, pipeline_id, maxParallel=2))

    assert run["state"] == "SUCCEEDED", run
    by_name = {s["name"]: s for s in run["stages"]}
    first, second = by_name["branch0"], by_name["branch1"]
    assert first["startedAt"] < second["finishedAt"] and second["startedAt"] < first["finishedAt"], "overlap"
    assert by_name["join"]["startedAt"] >= max(first["finishedAt"], second["finishedAt"])
    lock = yaml.safe_load((workspace_of(stack, project["id"]) / "pipelines/ml/dvc.lock").read_text())
    assert set(lock["stages"]) == {"branch0", "branch1", "join"}


async def test_an_invalid_pipeline_is_refused_and_nothing_is_queued(
    gql: GraphQLClient, make_project: MakeProject, mongo: Any
) -> None:
    project, pipeline_id = await example(gql, make_project)
    await write_file(gql, project["id"], "params.yaml", "nothing: here\n")
    before = mongo.runs.count_documents({})

    result = (
        await gql.execute(
            "mutation($id: ID!) { executePipeline(id: $id) { __typename ... on Error { message } } }",
            {"id": pipeline_id},
        )
    )["executePipeline"]

    assert result["__typename"] == "ValidationError"
    assert mongo.runs.count_documents({}) == before


async def test_a_pipeline_unchanged_since_its_validation_is_queued_without_validating_it_again(
    gql: GraphQLClient, make_project: MakeProject, mongo: Any
) -> None:
    project, pipeline_id = await example(gql, make_project)
    written = mongo.pipelines.find_one({"_id": ObjectId(pipeline_id)})["validation"]["checked_at"]

    run_id = await execute(gql, pipeline_id)

    assert mongo.pipelines.find_one({"_id": ObjectId(pipeline_id)})["validation"]["checked_at"] == written
    assert (await finished(gql, run_id))["state"] == "SUCCEEDED"
    # The run wrote outputs and dvc.lock only: still no validation needed.
    await finished(gql, await execute(gql, pipeline_id))
    assert mongo.pipelines.find_one({"_id": ObjectId(pipeline_id)})["validation"]["checked_at"] == written
    # A file written since: the pipeline is validated again before anything is queued.
    await write_file(gql, project["id"], "notes.txt", "x\n")
    await finished(gql, await execute(gql, pipeline_id))
    assert mongo.pipelines.find_one({"_id": ObjectId(pipeline_id)})["validation"]["checked_at"] > written


async def test_cancel_stops_a_running_stage_and_its_children(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    project, pipeline_id = await pipeline_of(
        gql,
        make_project,
        [{"name": "long", "command": "sh -c 'echo $$ > pid.txt; sleep 60 & sleep 60'", "outs": ["never.txt"]}],
    )
    run_id = await execute(gql, pipeline_id)
    await wait_for_run(gql, run_id, lambda r: stage_states(r).get("long") == "RUNNING")
    pid_file = workspace_of(stack, project["id"]) / "pid.txt"
    await wait_for_run(gql, run_id, lambda _: pid_file.exists() and pid_file.read_text().strip() != "")

    command = stage_pid(pid_file)

    result = (await gql.execute(CANCEL, {"id": run_id}))["cancelRun"]

    assert result["__typename"] == "RunCancelled"
    assert result["run"]["state"] == "CANCELLED", result
    assert stage_states(result["run"]) == {"long": "CANCELLED"}
    assert not is_running(command), "the stage's command is still running"
    # The workspace is usable: the next run works.
    await write_file(gql, project["id"], "dvc-free.txt", "x")
    run2 = await execute(gql, pipeline_id, timeoutSeconds=30)
    await wait_for_run(gql, run2, lambda r: stage_states(r).get("long") == "RUNNING")
    assert (await gql.execute(CANCEL, {"id": run2}))["cancelRun"]["run"]["state"] == "CANCELLED"


async def test_cancelling_a_queued_run_removes_it_from_the_queue(gql: GraphQLClient, make_project: MakeProject) -> None:
    _, pipeline_id = await pipeline_of(gql, make_project, [{"name": "long", "command": "sleep 60", "outs": ["x.txt"]}])
    first = await execute(gql, pipeline_id)
    await wait_for_run(gql, first, lambda r: r["state"] == "RUNNING")
    second = await execute(gql, pipeline_id)

    cancelled = (await gql.execute(CANCEL, {"id": second}))["cancelRun"]

    assert cancelled["run"]["state"] == "CANCELLED"
    assert cancelled["run"]["error"] == "cancelled before it started"
    assert (await gql.execute(CANCEL, {"id": first}))["cancelRun"]["run"]["state"] == "CANCELLED"
    again = (await gql.execute(CANCEL, {"id": second}))["cancelRun"]
    assert again["__typename"] == "ConflictError"
    assert (await get_run(gql, second))["state"] == "CANCELLED"


async def test_a_run_past_its_timeout_ends_timed_out(gql: GraphQLClient, make_project: MakeProject) -> None:
    _, pipeline_id = await pipeline_of(gql, make_project, [{"name": "long", "command": "sleep 60", "outs": ["x.txt"]}])

    run = await finished(gql, await execute(gql, pipeline_id, timeoutSeconds=1))

    assert run["state"] == "TIMED_OUT"
    assert stage_states(run) == {"long": "CANCELLED"}
    assert "timed out" in run["error"]


async def test_a_late_subscriber_gets_a_snapshot_then_a_gap_free_stream(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    stages = [
        {
            "name": "slow",
            "command": "for i in 1 2 3 4 5; do echo line $i; sleep 0.3; done > slow.txt",
            "outs": ["slow.txt"],
        },
        {"name": "next", "command": "cp slow.txt next.txt", "deps": ["slow.txt"], "outs": ["next.txt"]},
    ]
    _, pipeline_id = await pipeline_of(gql, make_project, stages)
    run_id = await execute(gql, pipeline_id)
    await wait_for_run(gql, run_id, lambda r: stage_states(r).get("slow") == "RUNNING")

    late = await follow(stack.base_url, gql, run_id)
    replay = await follow(stack.base_url, gql, run_id, after=0)

    snapshot = late[0]
    assert snapshot["type"] == "SNAPSHOT" and snapshot["run"]["state"] == "RUNNING"
    assert [u["seq"] for u in late[1:]] == list(range(snapshot["seq"] + 1, snapshot["seq"] + len(late)))
    assert late[-1]["runState"] == "SUCCEEDED"
    assert replay[0]["type"] == "SNAPSHOT"
    # FerretDB has been seen to answer the snapshot read with the run still RUNNING right after its last
    # event; the stream is complete either way, and it is what this test is about.
    assert replay[0]["run"]["state"] in ("RUNNING", "SUCCEEDED")
    assert replay[-1]["runState"] == "SUCCEEDED"
    assert [u["seq"] for u in replay[1:]] == list(range(1, len(replay))), "after=0 replays everything"
    assert replay[-1]["seq"] == late[-1]["seq"]


async def test_deleting_a_project_removes_its_runs_and_their_events(
    gql: GraphQLClient, make_project: MakeProject, mongo: Any
) -> None:
    project, pipeline_id = await pipeline_of(gql, make_project, [QUICK_STAGE])
    run_id = await execute(gql, pipeline_id)
    await finished(gql, run_id)
    assert mongo.run_events.count_documents({"run_id": run_id}) > 0

    deleted = await gql.execute("mutation($id: ID!) { deleteProject(id: $id) { __typename } }", {"id": project["id"]})

    assert deleted["deleteProject"]["__typename"] == "ProjectDeleted"
    assert mongo.runs.count_documents({"project_id": project["id"]}) == 0
    assert mongo.run_events.count_documents({"run_id": run_id}) == 0
