"""arq's WorkerSettings for the workspace-operations queue."""

from __future__ import annotations

from typing import Any, ClassVar

from arq.connections import RedisSettings

from app.settings import Settings
from workers.context import close_resources, open_resources
from workers.jobs.pipelines import (
    apply_pipeline,
    delete_pipeline,
    dry_run_pipeline,
    pipeline_dag,
    pipeline_status,
    validate_pipeline,
)
from workers.jobs.projects import delete_project, init_project

_settings = Settings.from_env()


class WorkerSettings:
    functions: ClassVar[list[Any]] = [
        init_project,
        delete_project,
        apply_pipeline,
        delete_pipeline,
        validate_pipeline,
        pipeline_status,
        dry_run_pipeline,
        pipeline_dag,
    ]
    on_startup = open_resources
    on_shutdown = close_resources
    redis_settings = RedisSettings.from_dsn(_settings.redis_url)
    queue_name = _settings.queue_name
    # arq's default 0.5 s poll would be added to every request a user waits on.
    poll_delay = 0.02
    # The health key lives twice this long; GET /health reads it to tell whether a worker is alive.
    health_check_interval = 5
    # Jobs are idempotent or guarded (a retried create meets its own Conflict), so a retry is safe;
    # results are kept long enough for the API to read them.
    max_tries = 3
    keep_result = 300
    job_timeout = 600
