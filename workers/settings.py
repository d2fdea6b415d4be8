"""The two arq workers one worker process runs: quick workspace operations, and pipeline runs.

Separate queues keep status, dry runs and validation answering at once while long runs execute.
"""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.connections import RedisSettings
from arq.typing import StartupShutdown
from arq.worker import Worker

from app.settings import Settings
from workers.experiments.job import (
    apply_experiment,
    branch_experiment,
    check_experiment,
    commit_experiment,
    execute_experiment,
    import_experiments,
    remove_experiments,
    remove_stale_copies,
)
from workers.jobs.environments import clean_environments
from workers.jobs.history import commit_run, pipeline_history, project_revisions, tag_revision, working_tree
from workers.jobs.pipelines import (
    apply_pipeline,
    delete_pipeline,
    dry_run_pipeline,
    pipeline_dag,
    pipeline_status,
    replace_pipeline_file,
    validate_pipeline,
)
from workers.jobs.projects import delete_project, init_project
from workers.jobs.results import revision_diff, workspace_results
from workers.runs.job import execute_run, reap_lost_runs, requeue_orphaned_runs

WORKSPACE_FUNCTIONS: list[Any] = [
    init_project,
    delete_project,
    apply_pipeline,
    replace_pipeline_file,
    delete_pipeline,
    validate_pipeline,
    pipeline_status,
    dry_run_pipeline,
    pipeline_dag,
    workspace_results,
    revision_diff,
    commit_run,
    project_revisions,
    pipeline_history,
    tag_revision,
    working_tree,
    check_experiment,
    branch_experiment,
    remove_experiments,
    apply_experiment,
    commit_experiment,
    import_experiments,
]

# arq's default 0.5 s poll would be added to every request a user waits on (half of it on average). Idle, a worker
# reads its queue this often: one ZRANGEBYSCORE, well under a millisecond of Redis time.
POLL_DELAY_SECONDS = 0.02

# The health key lives a little longer than this; GET /health reads it to tell whether a worker is alive.
HEALTH_CHECK_SECONDS = 5
REAP_EVERY_SECONDS = 5
STALE_COPIES_EVERY_SECONDS = 10


def cleanup_schedule(seconds: int) -> dict[str, Any]:
    """arq's cron fields for "every ``seconds``": whole minutes under an hour, whole hours from one hour."""
    if seconds < 3600:
        return {"minute": set(range(0, 60, max(1, seconds // 60))), "second": 6, "timeout": 600}
    return {"hour": set(range(0, 24, max(1, seconds // 3600))), "minute": 0, "second": 6, "timeout": 600}


def build_workers(settings: Settings, *, on_startup: StartupShutdown, on_shutdown: StartupShutdown) -> list[Worker]:
    """The workspace, runs and maintenance workers; arq calls each worker's hooks with its own ctx (so each hook once
    per worker)."""
    # What every worker of the process has alike: its Redis, the hooks, the small poll delay, signals left to serve().
    shared: dict[str, Any] = {
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "poll_delay": POLL_DELAY_SECONDS,
        "health_check_interval": HEALTH_CHECK_SECONDS,
        "handle_signals": False,
    }
    workspace = Worker(
        functions=WORKSPACE_FUNCTIONS,
        queue_name=settings.queue_name,
        **shared,
        # Jobs are idempotent or guarded (a retried create meets its own Conflict); results are kept
        # long enough for the API to read them.
        max_tries=3,
        keep_result=300,
        job_timeout=600,
    )
    runs = Worker(
        # clean_environments also as a function: an operator (or a test) may queue it now.
        functions=[execute_run, execute_experiment, clean_environments],
        queue_name=settings.runs_queue_name,
        **shared,
        max_jobs=settings.max_concurrent_pipelines,
        # cancelRun aborts a run's job (Job.abort); the job tells that from the worker stopping (workers.runs.job).
        allow_abort_jobs=True,
        # A run waiting for its workspace retries every half second; it never fails for that alone.
        max_tries=1_000_000,
        keep_result=60,
        # Runs end themselves (their own timeout); this only bounds a run stuck beyond any timeout.
        job_timeout=8 * 24 * 3600,
    )
    # The periodic jobs have a worker of their own: on the runs worker they waited for a free job slot, so a worker
    # busy with MAX_CONCURRENT_PIPELINES long runs (or runs waiting for their workspace) reaped and re-queued
    # nothing until one ended. arq's cron ids keep each round to one worker process, as before.
    maintenance = Worker(
        functions=[],
        cron_jobs=[
            cron(clean_environments, **cleanup_schedule(settings.environment_cleanup_seconds), run_at_startup=True),
            cron(reap_lost_runs, second=set(range(0, 60, REAP_EVERY_SECONDS)), run_at_startup=True, timeout=60),
            cron(requeue_orphaned_runs, second=set(range(2, 60, REAP_EVERY_SECONDS)), run_at_startup=True, timeout=60),
            cron(remove_stale_copies, second=set(range(4, 60, STALE_COPIES_EVERY_SECONDS)), timeout=120),
        ],
        queue_name=maintenance_queue_name(settings),
        **shared,
        keep_result=60,
    )
    return [workspace, runs, maintenance]


def maintenance_queue_name(settings: Settings) -> str:
    return f"{settings.runs_queue_name}:maintenance"
