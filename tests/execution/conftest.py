"""Every launcher test runs its stages through a ready stage server (not the slow path taken while it starts)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from launch_helpers import Launch, SessionLaunches

from workers.execution import launch_stage
from workers.execution.server import wait_for_stage_server


@pytest.fixture(autouse=True)
async def ready_stage_server() -> None:
    assert await wait_for_stage_server(60), "the stage server did not get ready"


@pytest.fixture(params=["own-cli", "session"])
async def launch(request: pytest.FixtureRequest) -> AsyncIterator[Launch]:
    """Launches a stage either way a run does: DVC's CLI forked from the stage server, or forked from a session."""
    if request.param == "own-cli":
        yield launch_stage
        return
    launches = SessionLaunches()
    try:
        yield launches
    finally:
        launches.close()
