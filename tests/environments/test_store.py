"""The environment store on its own, with the real uv: one build for concurrent needs, nothing half-built."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from workers.environments.requirements import Requirements
from workers.environments.step import BUILD_FAILED, EnvironmentBuild
from workers.environments.store import BUILDING_PREFIX, EnvironmentStore

DEADLINE_SECONDS = 120


def _requirements() -> bytes:
    # A comment of its own: a hash of its own (uv's cache, under the store, makes the download once per store).
    return f"# {uuid.uuid4().hex}\nsix==1.17.0\n".encode()


async def test_two_needs_of_one_environment_at_once_build_it_once(tmp_path: Path) -> None:
    store = EnvironmentStore(tmp_path / "environments")
    requirements = _requirements()
    logs: list[list[str]] = [[], []]

    def collector(index: int) -> Callable[[str], Awaitable[None]]:
        async def collect(text: str) -> None:
            logs[index].append(text)

        return collect

    results = await asyncio.wait_for(
        asyncio.gather(store.ensure(requirements, collector(0)), store.ensure(requirements, collector(1))),
        DEADLINE_SECONDS,
    )

    assert sorted(built for _, built in results) == [False, True]
    assert results[0][0] == results[1][0]
    waited = "".join(logs[[built for _, built in results].index(False)])
    assert "waiting for another run building environment" in waited
    environments = [p for p in store.root.iterdir() if not p.name.startswith(".")]
    assert environments == [results[0][0].root]


async def test_a_build_stopped_half_way_leaves_nothing_in_place(tmp_path: Path) -> None:
    store = EnvironmentStore(tmp_path / "environments")
    requirements = _requirements()
    started = asyncio.Event()

    async def on_output(text: str) -> None:
        if "uv pip install" in text:
            started.set()

    build = asyncio.create_task(store.ensure(requirements, on_output))
    await asyncio.wait_for(started.wait(), DEADLINE_SECONDS)
    build.cancel()
    await asyncio.gather(build, return_exceptions=True)

    environment = store.environment_for(requirements)
    assert not environment.root.exists()
    assert not [p for p in store.root.iterdir() if p.name.startswith(BUILDING_PREFIX)]
    _, built = await asyncio.wait_for(store.ensure(requirements, on_output), DEADLINE_SECONDS)
    assert built and store.is_built(environment)


async def test_an_unusable_store_fails_the_step_with_the_reason_in_its_log(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "environments"
    not_a_folder.write_text("a file where the store's folder should be")
    log: list[str] = []

    async def on_output(text: str) -> None:
        log.append(text)

    requirements = Requirements(source="requirements.txt", content=_requirements())
    step = EnvironmentBuild(EnvironmentStore(not_a_folder), requirements, on_output)
    result = await asyncio.wait_for(step.wait(), DEADLINE_SECONDS)

    assert result.exit_code != 0 and result.command_ran
    assert BUILD_FAILED in "".join(log) and str(tmp_path) not in "".join(log)
