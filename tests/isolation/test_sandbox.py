"""A hostile stage command against the real stack (API, worker, FerretDB, Redis, DVC): what it tries fails.

Each attack is the observation of issue 13 ("a stage of user A read a file in user B's workspace and appended to it,
listed the SQLite files of the whole database, got +PONG from the service's Redis, left `setsid sleep 301` running"):
a probe script, run as a stage of user A's project, tries it and reports what happened in report.json, and the test
checks that report and the files from outside.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.api.pipeline_fixtures import create_pipeline, write_file
from tests.api.run_helpers import CANCEL, execute, finished, stage_states, wait_for_run
from tests.conftest import CREATE_PROJECT, GraphQLClient, MakeUser, workspace_of
from tests.stack import ROOT, Stack
from tests.waiting import eventually

PROBE = """\
import json, os, socket, sys
plan = json.loads(sys.argv[1])
report = {}
def attempt(name, action):
    try:
        report[name] = {"ok": True, "value": action()}
    except Exception as error:
        report[name] = {"ok": False, "error": f"{type(error).__name__}: {error}"}
for path in plan["list"]:
    attempt("list " + path, lambda path=path: sorted(os.listdir(path)))
for path in plan["read"]:
    attempt("read " + path, lambda path=path: open(path).read())
for path in plan["write"]:
    attempt("write " + path, lambda path=path: open(path, "a").write("owned\\n"))
for host, port in plan["connect"]:
    attempt(f"connect {host}:{port}", lambda host=host, port=port: socket.create_connection((host, port), 3).close())
attempt("uid", os.getuid)
attempt("capabilities", lambda: [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0])
attempt("interfaces", lambda: sorted(l.split(":")[0].strip() for l in open("/proc/net/dev").readlines()[2:]))
attempt("environment", lambda: dict(os.environ))
attempt("python", lambda: sys.executable)
attempt("import service", lambda: __import__("app.settings") and "imported")
attempt("import dvc", lambda: __import__("dvc") and "imported")
json.dump(report, open("report.json", "w"), indent=1)
"""

SECRET = "B's secret\n"
# What the worker's stage environment and DVC give a command, and what the sandbox sets; nothing else.
KNOWN_VARIABLES = {
    "PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "PYTHONUNBUFFERED", "DVC_NO_ANALYTICS", "DVC_ROOT", "DVC_STAGE",
    "SHELL", "PWD", "SHLVL", "_", "VIRTUAL_ENV",
}  # fmt: skip


async def new_project(gql: GraphQLClient) -> str:
    data = await gql.execute(CREATE_PROJECT, {"input": {"name": f"p-{uuid.uuid4().hex[:8]}"}})
    assert data["createProject"]["__typename"] == "ProjectCreated", data
    project_id: str = data["createProject"]["project"]["id"]
    return project_id


async def run_stage(gql: GraphQLClient, project_id: str, command: str, **options: Any) -> dict[str, Any]:
    written = await create_pipeline(
        gql, project_id, name=f"p{uuid.uuid4().hex[:6]}", stages=[{"name": "s", "command": command, "outs": ["o"]}]
    )
    assert written["__typename"] == "PipelineWritten", written
    return await finished(gql, await execute(gql, written["pipeline"]["id"], **options))


def endpoint(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None, url
    return parts.hostname, parts.port


async def test_a_stage_sees_only_its_own_workspace_and_reaches_neither_mongodb_nor_redis(
    make_user: MakeUser, stack: Stack
) -> None:
    alice, bob = await make_user(), await make_user()
    mine, theirs = await new_project(alice), await new_project(bob)
    await write_file(bob, theirs, "secret.txt", SECRET)
    root = Path(stack.env["WORKSPACE_ROOT"])
    their_secret = workspace_of(stack, theirs) / "secret.txt"
    venv = sys.prefix
    base = Path(os.path.realpath(sys.base_prefix))
    interpreter_under_root = base.relative_to("/root").parts[0] if base.is_relative_to("/root") else None
    # A new file, never an existing one: if the sandbox failed, the test must not damage the machine.
    system_file = Path("/usr/local") / f"sandbox-probe-{uuid.uuid4().hex}"
    plan = {
        "list": ["..", str(root), str(workspace_of(stack, theirs)), str(ROOT), str(ROOT / ".data"), "/root", venv],
        "read": [
            f"../{theirs}/secret.txt",
            str(their_secret),
            str(ROOT / "pyproject.toml"),
            str(ROOT / ".data" / "services.env"),
            "/etc/shadow",
        ],
        "write": [str(their_secret), f"../{theirs}/secret.txt", ".git/config", ".dvc/config", str(system_file)],
        "connect": [endpoint(stack.env["MONGODB_URL"]), endpoint(stack.env["REDIS_URL"])],
    }
    await write_file(alice, mine, "probe.py", PROBE)

    try:
        run = await run_stage(alice, mine, f"python3 probe.py {shlex.quote(json.dumps(plan))}; touch o")
    finally:
        system_file.unlink(missing_ok=True)

    assert run["state"] == "SUCCEEDED", run
    report = json.loads((workspace_of(stack, mine) / "report.json").read_text())
    # Other workspaces, the database's and the service's files, /root: not there at all. ".." holds only our own.
    assert report["list .."] == {"ok": True, "value": [mine]}
    for path in plan["list"][1:]:
        if path == "/root" and interpreter_under_root is not None:
            # The projects' environments link into the service's base interpreter, installed under /root on this
            # machine: the folders leading to it are there, empty but for it, and nothing else of /root.
            assert report["list /root"] == {"ok": True, "value": [interpreter_under_root]}, report["list /root"]
        elif path != str(root):
            assert not report[f"list {path}"]["ok"], (path, report[f"list {path}"])
    assert report[f"list {root}"]["ok"] and report[f"list {root}"]["value"] == [mine], report[f"list {root}"]
    for path in plan["read"]:
        assert not report[f"read {path}"]["ok"], (path, report[f"read {path}"])
    for path in plan["write"]:
        assert not report[f"write {path}"]["ok"], (path, report[f"write {path}"])
    assert their_secret.read_text() == SECRET
    assert "owned" not in (workspace_of(stack, mine) / ".git" / "config").read_text()
    # The service's MongoDB and Redis are not reachable: the stage has a network of its own, with only loopback.
    for host, port in plan["connect"]:
        assert not report[f"connect {host}:{port}"]["ok"], report[f"connect {host}:{port}"]
    assert report["interfaces"]["value"] == ["lo"]
    # An unprivileged user without capabilities, a clean environment, a plain interpreter without the service's code.
    assert report["uid"]["value"] != 0
    assert int(report["capabilities"]["value"], 16) == 0
    environment = report["environment"]["value"]
    assert set(environment) <= KNOWN_VARIABLES, set(environment) - KNOWN_VARIABLES
    assert not any(stack.env[name] in value for value in environment.values() for name in ("MONGODB_URL", "REDIS_URL"))
    # The plain environment every project without requirements shares (workers/environments/), not the service's.
    assert (
        Path(report["python"]["value"]).parent.parent.parent
        == Path(stack.env["WORKSPACE_ROOT"]).parent / "environments"
    )
    assert not report["import service"]["ok"] and not report["import dvc"]["ok"], report


def processes_in(folder: Path) -> list[str]:
    """``pid name`` of each process working in ``folder``: DVC, the stage shell, and the sandbox's processes (which
    keep their host working folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd") == str(folder):
                    found.append(f"{entry.name} {(entry / 'comm').read_text().strip()}")
            except OSError:
                continue
    return found


async def until_no_process_in(folder: Path, seconds: float = 10.0) -> list[str]:
    """The processes still working in ``folder`` once none is, or after ``seconds`` (the caller asserts it is [])."""
    with contextlib.suppress(AssertionError):
        await eventually(lambda: not processes_in(folder), seconds=seconds, what=f"no process in {folder}")
    return processes_in(folder)


async def test_a_stage_leaves_no_process_behind_setsid_included(make_user: MakeUser, stack: Stack) -> None:
    alice = await make_user()
    project = await new_project(alice)

    run = await run_stage(alice, project, "setsid sleep 301 & (sleep 302 &); nohup sleep 303 >/dev/null 2>&1 & touch o")

    assert run["state"] == "SUCCEEDED", run
    assert await until_no_process_in(workspace_of(stack, project)) == []


async def test_a_cancelled_stage_leaves_no_process_behind(make_user: MakeUser, stack: Stack) -> None:
    alice = await make_user()
    project = await new_project(alice)
    written = await create_pipeline(
        alice, project, name="long", stages=[{"name": "s", "command": "setsid sleep 301 & sleep 300", "outs": ["o"]}]
    )
    run_id = await execute(alice, written["pipeline"]["id"])
    workspace = workspace_of(stack, project)
    sleeping = lambda _: sum(p.endswith(" sleep") for p in processes_in(workspace)) == 2  # noqa: E731
    await wait_for_run(alice, run_id, sleeping)

    result = (await alice.execute(CANCEL, {"id": run_id}))["cancelRun"]

    assert result["run"]["state"] == "CANCELLED", result
    assert await until_no_process_in(workspace) == []


async def test_a_timed_out_stage_leaves_no_process_behind(make_user: MakeUser, stack: Stack) -> None:
    alice = await make_user()
    project = await new_project(alice)

    run = await run_stage(alice, project, "setsid sleep 301 & sleep 300", timeoutSeconds=3)

    assert run["state"] == "TIMED_OUT", run
    assert stage_states(run) == {"s": "CANCELLED"}
    assert await until_no_process_in(workspace_of(stack, project)) == []


async def test_health_with_a_token_shows_the_workers_sandbox(http: httpx.AsyncClient, make_user: MakeUser) -> None:
    alice = await make_user()

    detailed = (await http.get("/health", headers=alice.headers)).json()
    anonymous = (await http.get("/health")).json()

    assert anonymous == {"status": "ok"}
    assert detailed["sandbox"]["ok"] is True, detailed
    (worker,) = detailed["sandbox"]["workers"].values()
    assert worker["mode"] == "bubblewrap" and worker["available"] is True
    assert worker["uid"] == (65534 if os.geteuid() == 0 else None)
    assert worker["cgroup"].startswith(("usable", "not usable")), worker
