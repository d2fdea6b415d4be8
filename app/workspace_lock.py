"""The name and holder of a project's workspace lock in Redis, shared by the workers (who take it) and the API (which
frees it for a run it settled itself, see app.services.run_settlement)."""

from __future__ import annotations

from redis.asyncio import Redis

# Deletes the lock only if it still holds the given token: one round trip, nobody can take it in between.
_RELEASE_IF_HELD = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def workspace_lock_name(project_id: str) -> str:
    return f"workspace-lock:{project_id}"


def run_lock_token(run_id: str) -> str:
    """The lock's value while a run holds the workspace: it names the run, so whoever settles a run whose worker is
    gone (the reaper, cancelRun) can free the workspace without freeing someone else's lock."""
    return f"run:{run_id}"


def run_holding(lock_value: bytes | str | None) -> str | None:
    """The id of the run whose token ``lock_value`` is, or None when the lock is free or held by something else."""
    value = lock_value.decode() if isinstance(lock_value, bytes) else lock_value
    prefix = run_lock_token("")
    if not isinstance(value, str) or not value.startswith(prefix):
        return None
    return value.removeprefix(prefix)


async def release_run_lock(redis: Redis, *, project_id: str, run_id: str) -> bool:
    """Free the workspace if its lock still names ``run_id``; False when the lock is gone or held by someone else."""
    released = await redis.eval(_RELEASE_IF_HELD, 1, workspace_lock_name(project_id), run_lock_token(run_id))  # type: ignore[misc]
    return bool(released)
