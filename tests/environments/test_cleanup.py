"""The environments' cleanup (workers/environments/cleanup.py): on real folders and real locks (one held by another
process, as another worker's run holds it), then through the real worker's job against the real stack."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from arq import create_pool
from arq.connections import RedisSettings

from app.settings import Settings
from tests.api.pipeline_fixtures import write_file
from tests.api.run_helpers import execute, finished
from tests.conftest import GraphQLClient, workspace_of
from tests.environments.test_run_environment import (
    ECHO_STAGE,
    SECONDS,
    MakeProject,
    built_environments,
    environments_root,
    project_with,
    unique,
)
from tests.stack import Stack
from tests.waiting import eventually
from workers.environments.cleanup import REMOVING_PREFIX, in_use, remove_unused, use_file
from workers.environments.requirements import read_requirements
from workers.environments.store import LOCKS_FOLDER, EnvironmentStore, PythonEnvironment, environment_key

DAY = 24 * 3600.0
RETENTION = 30 * DAY


def environment(store: EnvironmentStore, name: str, *, age_days: float) -> PythonEnvironment:
    """A built environment (its bin/python) last built or used ``age_days`` ago."""
    root = store.root / name
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "python").write_text("")
    moment = time.time() - age_days * DAY
    os.utime(root, (moment, moment))
    return PythonEnvironment(root=root, interpreter_home=Path("/usr"))


Hold = Callable[[Path], Awaitable[None]]


@pytest.fixture
def held_elsewhere(tmp_path: Path) -> Iterator[Hold]:
    """Hold a use file with a shared lock in another process (util-linux flock), as another worker's run does."""
    holders: list[subprocess.Popen[bytes]] = []

    async def hold(path: Path) -> None:
        ready = tmp_path / f"held-{uuid.uuid4().hex[:6]}"
        holders.append(subprocess.Popen(["flock", "--shared", str(path), "sh", "-c", f"touch {ready}; exec sleep 120"]))
        await eventually(ready.exists, seconds=10, what="the other process holds the lock")

    yield hold
    for holder in holders:
        holder.kill()
        holder.wait()


async def test_only_old_environments_no_project_needs_and_no_run_uses_are_removed(
    tmp_path: Path, held_elsewhere: Hold
) -> None:
    store = EnvironmentStore(tmp_path / "environments")
    old = environment(store, "py3-old", age_days=40)
    current = environment(store, "py3-current", age_days=400)
    recent = environment(store, "py3-recent", age_days=2)
    used_lately = environment(store, "py3-used-lately", age_days=40)
    used_here = environment(store, "py3-used-here", age_days=40)
    used_elsewhere = environment(store, "py3-used-elsewhere", age_days=40)
    (store.root / ".uv-cache").mkdir()
    (store.root / ".building-py3-x-1234").mkdir()
    (store.root / f"{REMOVING_PREFIX}py3-gone-1234").mkdir()
    with in_use(store, used_lately):
        pass  # a run used it an hour ago, say: its use file's time is now
    (store.root / LOCKS_FOLDER).mkdir(exist_ok=True)
    use_file(store, used_elsewhere.root.name).touch()
    os.utime(use_file(store, used_elsewhere.root.name), (time.time() - 40 * DAY,) * 2)
    await held_elsewhere(use_file(store, used_elsewhere.root.name))

    with in_use(store, used_here):
        os.utime(use_file(store, used_here.root.name), (time.time() - 40 * DAY,) * 2)  # a run of 40 days, say
        removed = remove_unused(store, {current.root.name}, retention_seconds=RETENTION)

    assert removed == [old.root.name]
    assert not old.root.exists()
    for kept in (current, recent, used_lately, used_here, used_elsewhere):
        assert kept.python.exists(), kept.root.name
    # What is not an environment stays; a removal a stopped worker left is finished.
    assert {p.name for p in store.root.iterdir()} == {
        LOCKS_FOLDER,
        ".uv-cache",
        ".building-py3-x-1234",
        *(e.root.name for e in (current, recent, used_lately, used_here, used_elsewhere)),
    }


def test_nothing_to_clean_in_a_store_not_made_yet(tmp_path: Path) -> None:
    assert remove_unused(EnvironmentStore(tmp_path / "none"), set(), retention_seconds=RETENTION) == []


async def clean(stack: Stack) -> list[str]:
    """The worker's own cleanup job, queued now on its runs queue; what it removed."""
    settings = Settings.from_env(stack.env)
    pool = await create_pool(RedisSettings.from_dsn(stack.env["REDIS_URL"]))
    try:
        job = await pool.enqueue_job("clean_environments", _queue_name=settings.runs_queue_name)
        assert job is not None
        removed: list[str] = await job.result(timeout=60)
    finally:
        await pool.aclose()
    return removed


def age(stack: Stack, name: str, days: float) -> None:
    root = environments_root(stack)
    moment = time.time() - days * DAY
    for path in (root / name, root / LOCKS_FOLDER / f"{name}.use"):
        if path.exists():
            os.utime(path, (moment, moment))


async def test_the_worker_removes_what_no_project_needs_and_keeps_each_projects_current_one(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack
) -> None:
    # Only a comment: an environment of its own, with no package to download.
    project_id, pipeline_id = await project_with(gql, make_project, [ECHO_STAGE], unique(""))
    run = await finished(gql, await execute(gql, pipeline_id), seconds=SECONDS)
    assert run["state"] == "SUCCEEDED", run
    requirements = read_requirements(workspace_of(stack, project_id))
    assert requirements is not None
    current = environment_key(requirements.content)
    orphan = f"py3.11.7-{uuid.uuid4().hex}"
    environment(EnvironmentStore(environments_root(stack)), orphan, age_days=40)
    age(stack, current, 40)

    removed = await clean(stack)

    assert orphan in removed and current not in removed, removed
    assert current in built_environments(stack) and orphan not in built_environments(stack)

    # A new requirements file: the old environment is nobody's now, and goes once unused long enough.
    await write_file(gql, project_id, "requirements.txt", unique(""))
    age(stack, current, 40)
    assert current in await clean(stack)
    assert current not in built_environments(stack)


def test_the_cleanup_runs_every_so_many_minutes_or_hours() -> None:
    from workers.settings import cleanup_schedule

    assert cleanup_schedule(600)["minute"] == {0, 10, 20, 30, 40, 50}
    assert cleanup_schedule(3600)["hour"] == set(range(24)) and cleanup_schedule(3600)["minute"] == 0
    assert cleanup_schedule(6 * 3600)["hour"] == {0, 6, 12, 18}
