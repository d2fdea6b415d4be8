"""Every launcher test runs its stages through a ready stage server (not the slow path taken while it starts)."""

from __future__ import annotations

import pytest

from workers.execution.server import wait_for_stage_server


@pytest.fixture(autouse=True)
async def ready_stage_server() -> None:
    assert await wait_for_stage_server(60), "the stage server did not get ready"
