"""Where workers record whether they can sandbox stage commands, for the API's /health to read.

One Redis hash per runs queue: a field per worker process (its id), a JSON value (workers.sandbox.policy) that the
worker rewrites every 10 s with ``recorded_at``; an entry older than STALE_AFTER_SECONDS belongs to a worker gone.
"""

from __future__ import annotations

SANDBOX_KEY_SUFFIX = ":sandbox"
STALE_AFTER_SECONDS = 30.0


def sandbox_status_key(queue_name: str) -> str:
    """The hash the workers of ``queue_name`` write their sandbox capability to."""
    return queue_name + SANDBOX_KEY_SUFFIX
