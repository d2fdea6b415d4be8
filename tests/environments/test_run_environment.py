"""A project's own Python environment, built with uv as the run's first step, on the real stack and real PyPI."""

from __future__ import annotations

import asyncio
import fcntl
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.api.pipeline_fixtures import create_pipeline, write_file
from tests.api.run_helpers import CANCEL, execute, finished, wait_for_run
from tests.conftest import GraphQLClient, workspace_of
from tests.stack import Stack
from workers.environments.store import EnvironmentStore

MakeProject = Callable[..., Awaitable[dict[str, Any]]]
ENVIRONMENT = ":environment"
# Small wheels from PyPI (six: 11 kB).
SIX = "six==1.17.0"
OLDER_SIX = "six==1.16.0"
# What a stage's interpreter reports: the module's version, its prefix, VIRTUAL_ENV and PATH.
REPORT_SIX = (
    "python -c \"import json, os, sys, six; json.dump({'six': six.__version__, 'prefix': sys.prefix, "
    "'virtual_env': os.environ.get('VIRTUAL_ENV'), 'path': os.environ['PATH'], 'sys_path': sys.path}, "
    "open('report.json', 'w'))\""
)
REPORT_STAGE = {"name": "report", "command": REPORT_SIX, "deps": ["requirements.txt"], "outs": ["report.json"]}
# Run a build in a test of its own: the session's other tests share the environments folder and uv's cache.
SECONDS = 180


def unique(requirements: str) -> str:
    """The same requirements with a comment of their own: another hash, so an environment this test builds."""
    return f"# {uuid.uuid4().hex}\n{requirements}\n"


def environments_root(stack: Stack) -> Path:
    return Path(stack.env["WORKSPACE_ROOT"]).parent / "environments"


def built_environments(stack: Stack) -> set[str]:
    return {p.name for p in environments_root(stack).iterdir() if not p.name.startswith(".")}


async def project_with(
    gql: GraphQLClient, make_project: MakeProject, stages: list[dict[str, Any]], requirements: str | None
) -> tuple[str, str]:
    project = await make_project()
    if requirements is not None:
        await write_file(gql, project["id"], "requirements.txt", requirements)
    written = await create_pipeline(gql, project["id"], stages=stages)
    assert written["__typename"] == "PipelineWritten", written
    return project["id"], written["pipeline"]["id"]


def step(run: dict[str, Any], name: str) -> dict[str, Any]:
    found = [s for s in run["stages"] if s["name"] == name]
    assert len(found) == 1, run["stages"]
    return found[0]


def report(stack: Stack, project_id: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((workspace_of(stack, project_id) / "report.json").read_text())
    return loaded


async def test_a_stage_imports_what_requirements_txt_names_from_its_own_environment(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    requirements = unique(SIX)
    project_id, pipeline_id = await project_with(gql, make_project, [REPORT_STAGE], requirements)

    run = await finished(gql, await execute(gql, pipeline_id), seconds=SECONDS)

    assert run["state"] == "SUCCEEDED", run
    assert [s["name"] for s in run["stages"]] == [ENVIRONMENT, "report"], "the environment step comes first"
    environment = step(run, ENVIRONMENT)
    assert environment["state"] == "SUCCEEDED" and environment["exitCode"] == 0
    assert "uv pip install" in environment["log"]["text"] and "+ six==1.17.0" in environment["log"]["text"]
    assert environment["finishedAt"] <= step(run, "report")["startedAt"]
    seen = report(stack, project_id)
    assert seen["six"] == "1.17.0"
    prefix = Path(seen["prefix"])
    assert prefix.parent == environments_root(stack) and seen["virtual_env"] == str(prefix)
    assert seen["path"].split(":")[0] == str(prefix / "bin"), "the environment's bin/ leads PATH"
    service_venv = sys.prefix  # the tests run in the service's virtualenv, as the worker does
    assert not any(entry.startswith(service_venv) for entry in seen["path"].split(":") + seen["sys_path"])
    assert (prefix / "requirements.txt").read_text() == requirements, "the environment keeps what it was built from"


async def test_the_service_packages_are_not_importable_from_a_stage(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    # strawberry, pymongo and dvc are the service's own packages: installed in its virtualenv, never in a stage's.
    stages = [
        {
            "name": "plain",
            "command": "python -c \"import sys; open('prefix.txt', 'w').write(sys.prefix)\"",
            "outs": ["prefix.txt"],
        },
        {"name": "service", "command": "python -c 'import strawberry'", "deps": ["prefix.txt"], "outs": ["never"]},
    ]
    without_id, without = await project_with(gql, make_project, stages, requirements=None)
    _, with_requirements = await project_with(gql, make_project, stages, requirements=unique(SIX))

    plain = await finished(gql, await execute(gql, without), seconds=SECONDS)
    own = await finished(gql, await execute(gql, with_requirements), seconds=SECONDS)

    for run in (plain, own):
        assert run["state"] == "FAILED", run
        assert step(run, "plain")["state"] == "SUCCEEDED"
        service = step(run, "service")
        assert service["state"] == "FAILED" and service["exitCode"] != 0
        assert "ModuleNotFoundError: No module named 'strawberry'" in service["log"]["text"]
    assert ENVIRONMENT not in {s["name"] for s in plain["stages"]}, "no requirements, no step"
    plain_prefix = Path((workspace_of(stack, without_id) / "prefix.txt").read_text())
    assert plain_prefix.parent == environments_root(stack), "a plain virtualenv of the service, not its own"


async def test_projects_with_the_same_requirements_share_one_environment_built_once(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    requirements = unique(SIX)
    first_id, first = await project_with(gql, make_project, [REPORT_STAGE], requirements)
    second_id, second = await project_with(gql, make_project, [REPORT_STAGE], requirements)
    before = built_environments(stack)

    run_ids = await asyncio.gather(execute(gql, first), execute(gql, second))
    runs = [await finished(gql, run_id, seconds=SECONDS) for run_id in run_ids]

    assert [r["state"] for r in runs] == ["SUCCEEDED", "SUCCEEDED"], runs
    steps = sorted((step(r, ENVIRONMENT) for r in runs), key=lambda s: str(s["state"]))
    assert [s["state"] for s in steps] == ["SKIPPED", "SUCCEEDED"], "built by one run, found built by the other"
    assert steps[0]["skipReason"] == "environment already built for this requirements.txt"
    assert "+ six==1.17.0" not in steps[0]["log"]["text"]
    assert report(stack, first_id)["prefix"] == report(stack, second_id)["prefix"]
    assert len(built_environments(stack) - before) == 1


async def test_a_bad_requirement_fails_the_run_with_uv_log_and_no_stage_runs(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    missing = f"no-such-package-{uuid.uuid4().hex[:12]}==1.0"
    stages = [
        {"name": "first", "command": "echo ran > first.txt", "outs": ["first.txt"]},
        {"name": "second", "command": "cp first.txt second.txt", "deps": ["first.txt"], "outs": ["second.txt"]},
    ]
    project_id, pipeline_id = await project_with(gql, make_project, stages, unique(missing))
    before = built_environments(stack)

    run = await finished(gql, await execute(gql, pipeline_id), seconds=SECONDS)

    assert run["state"] == "FAILED"
    assert run["error"] == "the project's Python environment could not be built from requirements.txt"
    environment = step(run, ENVIRONMENT)
    assert environment["state"] == "FAILED" and environment["exitCode"] != 0
    assert environment["error"] == "the Python environment could not be built; see the step's log"
    log = environment["log"]["text"]
    assert missing.split("==")[0] in log and "was not found in the package registry" in log, log
    assert {s["name"]: s["state"] for s in run["stages"] if s["name"] != ENVIRONMENT} == {
        "first": "NOT_RUN",
        "second": "NOT_RUN",
    }
    assert not (workspace_of(stack, project_id) / "first.txt").exists()
    assert built_environments(stack) == before, "a failed build leaves no environment"
    assert not [p for p in environments_root(stack).iterdir() if p.name.startswith(".building-")]


async def test_a_requirements_file_that_reaches_outside_is_refused_in_the_step_log(
    gql: GraphQLClient, make_project: MakeProject
) -> None:
    _, pipeline_id = await project_with(
        gql, make_project, [{"name": "first", "command": "echo ran", "outs": []}], "six\n-r /etc/passwd\n"
    )

    run = await finished(gql, await execute(gql, pipeline_id), seconds=SECONDS)

    assert run["state"] == "FAILED"
    environment = step(run, ENVIRONMENT)
    assert environment["state"] == "FAILED"
    assert "requirements.txt, line 2: options are not allowed" in environment["log"]["text"]
    assert "root:" not in environment["log"]["text"]
    assert step(run, "first")["state"] == "NOT_RUN"


async def test_a_changed_requirements_file_gets_a_new_environment(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    tag = uuid.uuid4().hex
    project_id, pipeline_id = await project_with(gql, make_project, [REPORT_STAGE], f"# {tag}\n{SIX}\n")
    first = await finished(gql, await execute(gql, pipeline_id), seconds=SECONDS)
    first_seen = report(stack, project_id)

    await write_file(gql, project_id, "requirements.txt", f"# {tag}\n{OLDER_SIX}\n")
    changed = await finished(gql, await execute(gql, pipeline_id), seconds=SECONDS)
    changed_seen = report(stack, project_id)

    await write_file(gql, project_id, "requirements.txt", f"# {tag}\n{SIX}\n")
    back = await finished(gql, await execute(gql, pipeline_id), seconds=SECONDS)

    assert [r["state"] for r in (first, changed, back)] == ["SUCCEEDED"] * 3
    assert step(first, ENVIRONMENT)["state"] == "SUCCEEDED" and first_seen["six"] == "1.17.0"
    assert step(changed, ENVIRONMENT)["state"] == "SUCCEEDED" and changed_seen["six"] == "1.16.0"
    assert changed_seen["prefix"] != first_seen["prefix"]
    assert Path(first_seen["prefix"]).is_dir(), "the first environment stays for projects still using it"
    assert step(back, ENVIRONMENT)["state"] == "SKIPPED", "the first environment is found again"
    assert report(stack, project_id) == first_seen


async def test_a_run_cancelled_while_its_environment_is_being_built_ends_cancelled_and_builds_nothing(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    requirements = unique(SIX)
    _, pipeline_id = await project_with(gql, make_project, [REPORT_STAGE], requirements)
    store = EnvironmentStore(environments_root(stack))
    environment = store.environment_for(requirements.encode())
    locks = environments_root(stack) / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    # Another builder of the same environment holds its lock: the run's step waits on it, RUNNING, until cancelled.
    with open(locks / f"{environment.root.name}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        run_id = await execute(gql, pipeline_id)
        waiting = await wait_for_run(
            gql,
            run_id,
            lambda r: any(
                s["name"] == ENVIRONMENT and "waiting for another run" in s["log"]["text"] for s in r["stages"]
            ),
            seconds=SECONDS,
        )
        assert step(waiting, ENVIRONMENT)["state"] == "RUNNING"
        cancelled = (await gql.execute(CANCEL, {"id": run_id}))["cancelRun"]
        assert cancelled["__typename"] == "RunCancelled", cancelled
        run = await finished(gql, run_id, seconds=SECONDS)

    assert run["state"] == "CANCELLED"
    assert step(run, ENVIRONMENT)["state"] == "CANCELLED"
    assert step(run, "report")["state"] == "NOT_RUN"
    assert not environment.root.exists()


SET_REQUIREMENTS_PATH = """
mutation($p: ID!, $path: String) {
  setProjectRequirementsPath(projectId: $p, path: $path) {
    __typename
    ... on RequirementsPathChanged { project { requirementsPath } }
    ... on ValidationError { issues { path message } }
    ... on Error { message }
  }
}
"""
PROJECT_REQUIREMENTS_PATH = "query($p: ID!) { project(id: $p) { ... on Project { requirementsPath } } }"


async def test_an_owner_chooses_the_requirements_file_and_a_path_outside_the_workspace_is_refused(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    stage = {**REPORT_STAGE, "deps": ["env/requirements-ml.txt"]}
    project_id, pipeline_id = await project_with(gql, make_project, [stage], requirements=None)
    await write_file(gql, project_id, "env/requirements-ml.txt", unique(SIX))
    shown = await gql.execute(PROJECT_REQUIREMENTS_PATH, {"p": project_id})
    assert shown["project"]["requirementsPath"] == "requirements.txt"

    for outside in ("../other/requirements.txt", "/etc/passwd", ".git/config", "a\x00b"):
        refused = (await gql.execute(SET_REQUIREMENTS_PATH, {"p": project_id, "path": outside}))[
            "setProjectRequirementsPath"
        ]
        assert refused["__typename"] == "ValidationError", refused
        assert refused["issues"][0]["path"] == "requirementsPath"
    assert (await gql.execute(PROJECT_REQUIREMENTS_PATH, {"p": project_id}))["project"] == shown["project"]

    changed = (await gql.execute(SET_REQUIREMENTS_PATH, {"p": project_id, "path": "./env/requirements-ml.txt"}))[
        "setProjectRequirementsPath"
    ]
    assert changed == {
        "__typename": "RequirementsPathChanged",
        "project": {"requirementsPath": "env/requirements-ml.txt"},
    }
    run = await finished(gql, await execute(gql, pipeline_id), seconds=SECONDS)
    assert run["state"] == "SUCCEEDED", run
    assert step(run, ENVIRONMENT)["command"] == "uv pip install -r env/requirements-ml.txt"
    assert report(stack, project_id)["six"] == "1.17.0"

    await gql.execute(SET_REQUIREMENTS_PATH, {"p": project_id, "path": "env/missing.txt"})
    missing = await finished(gql, await execute(gql, pipeline_id, force=True), seconds=SECONDS)
    assert missing["state"] == "FAILED"
    assert "env/missing.txt does not exist in the workspace" in step(missing, ENVIRONMENT)["log"]["text"]
    assert step(missing, "report")["state"] == "NOT_RUN"


async def test_the_environment_step_is_listed_first_also_when_dvc_skips_stages(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    copy_stage = {"name": "copy", "command": "cp input.txt copied.txt", "deps": ["input.txt"], "outs": ["copied.txt"]}
    project_id, pipeline_id = await project_with(gql, make_project, [REPORT_STAGE, copy_stage], unique(SIX))
    await write_file(gql, project_id, "input.txt", "one\n")
    first = await finished(gql, await execute(gql, pipeline_id), seconds=SECONDS)
    await write_file(gql, project_id, "input.txt", "two\n")

    second = await finished(gql, await execute(gql, pipeline_id), seconds=SECONDS)

    assert first["state"] == second["state"] == "SUCCEEDED", (first, second)
    assert [(s["name"], s["state"]) for s in second["stages"]] == [
        (ENVIRONMENT, "SKIPPED"),
        ("report", "SKIPPED"),
        ("copy", "SUCCEEDED"),
    ]


DRY_RUN = """
mutation($id: ID!, $options: DryRunInput) {
  dryRunPipeline(id: $id, options: $options) {
    __typename
    ... on DryRunPlan { stages { name command certainty upstream changes { kind path state } } }
  }
}
"""
ECHO_STAGE = {"name": "echo", "command": "echo hi > hi.txt", "deps": ["requirements.txt"], "outs": ["hi.txt"]}


async def test_a_dry_run_lists_the_environment_step_a_run_executes_first(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    # Only a comment: an environment of its own, with no package to download.
    _, pipeline_id = await project_with(gql, make_project, [ECHO_STAGE], unique(""))
    _, plain_pipeline = await project_with(gql, make_project, [ECHO_STAGE], None)

    before = (await gql.execute(DRY_RUN, {"id": pipeline_id}))["dryRunPipeline"]
    run = await finished(gql, await execute(gql, pipeline_id), seconds=SECONDS)
    forced = (await gql.execute(DRY_RUN, {"id": pipeline_id, "options": {"force": True}}))["dryRunPipeline"]
    plain = (await gql.execute(DRY_RUN, {"id": plain_pipeline}))["dryRunPipeline"]

    assert run["state"] == "SUCCEEDED", run
    # The plan names the steps the run then executed, in its order; the stages wait for the environment.
    assert [s["name"] for s in before["stages"]] == [s["name"] for s in run["stages"]] == [ENVIRONMENT, "echo"]
    environment, echo = before["stages"]
    assert environment == {
        "name": ENVIRONMENT,
        "command": "uv pip install -r requirements.txt",
        "certainty": "WILL_RUN",
        "upstream": [],
        "changes": [{"kind": "DEP", "path": "requirements.txt", "state": "not built"}],
    }
    assert echo["upstream"] == [ENVIRONMENT]
    assert step(run, ENVIRONMENT)["command"] == environment["command"]
    # Built by that run: the next run finds it (SKIPPED), and the plan says nothing is to build.
    assert [s["name"] for s in forced["stages"]] == [ENVIRONMENT, "echo"]
    assert forced["stages"][0]["changes"] == []
    # Without a requirements file a run has no environment step, and neither has its plan.
    assert [s["name"] for s in plain["stages"]] == ["echo"]
