"""Every launcher test starts with a ready stage server, so that its deadlines do not include the server's start-up."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from launch_helpers import Launch, SessionLaunches

from workers.execution import launch_stage
from workers.execution.server import wait_for_stage_server


@pytest.fixture(autouse=True)
async def ready_stage_server() -> None:
    assert await wait_for_stage_server(60), "the stage server did not get ready"


@pytest.fixture(params=["own-session", "session"])
async def launch(request: pytest.FixtureRequest) -> AsyncIterator[Launch]:
    """Launches a stage from a session opened for it alone (``launch_stage`` without one), or from a session opened
    explicitly, as a run does."""
    if request.param == "own-session":
        yield launch_stage
        return
    launches = SessionLaunches()
    try:
        yield launches
    finally:
        launches.close()
