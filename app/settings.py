"""Settings, read once from the environment into one typed object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    return int(raw) if raw else default


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    return float(raw) if raw else default


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class Settings:
    mongodb_url: str
    mongodb_database: str
    redis_url: str
    workspace_root: Path
    queue_name: str
    """The arq queue for workspace operations (writes, validation, status, dry runs, DAG)."""
    runs_queue_name: str
    """The arq queue for pipeline runs, so long runs never delay quick operations."""
    max_concurrent_pipelines: int
    """Runs one worker process executes at once; more wait in the queue."""
    default_run_timeout_seconds: float
    heartbeat_seconds: float
    lost_after_seconds: float
    """A RUNNING run whose worker has been silent this long is marked FAILED ("worker lost")."""
    job_wait_seconds: float
    """How long a request waits for a worker's answer before saying no worker answered."""
    clone_wait_seconds: float
    workspace_write_wait_seconds: float
    """How long a write waits for the workspace lock before answering WorkspaceBusy."""
    workspace_read_wait_seconds: float
    """How long a read (status, dry run, DAG) waits for the lock before answering from what is known."""
    max_request_bytes: int
    max_upload_bytes: int
    max_text_file_bytes: int
    max_page_size: int
    graphiql: bool
    introspection: bool
    max_query_depth: int
    max_aliases: int
    max_tokens: int
    work_requests_per_minute: int
    """Per user (all their tokens together): mutations that start work in a worker (runs, writes, validation, ...)."""
    max_tokens_per_user: int
    """Live (unrevoked, unexpired) API tokens one user may hold."""
    repository_url_schemes: tuple[str, ...]
    """Remote URL schemes a project may be cloned from (REPOSITORY_URL_SCHEMES, comma-separated; add ssh to allow
    ssh:// and user@host:path)."""
    allowed_local_repository_roots: tuple[Path, ...]
    """Folders whose local repositories may be cloned (ALLOWED_LOCAL_REPOSITORY_ROOTS, os.pathsep-separated); none
    by default. WORKSPACE_ROOT and the service's own install are refused even under them."""
    ws_token_check_seconds: float
    """How often an open WebSocket's token is checked again (it is also checked on every new operation)."""
    ws_max_operations_per_connection: int
    """Open operations (subscriptions, queries, mutations) one WebSocket may hold at once."""
    ws_max_operations_per_user: int
    """Open WebSocket operations one user may hold at once in one API process, across all their sockets."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            mongodb_url=env.get("MONGODB_URL", "mongodb://127.0.0.1:27017"),
            mongodb_database=env.get("MONGODB_DATABASE", "dvc_pipelines"),
            redis_url=env.get("REDIS_URL", "redis://127.0.0.1:6379"),
            workspace_root=Path(env.get("WORKSPACE_ROOT", ".data/workspaces")).resolve(),
            queue_name=env.get("ARQ_QUEUE", "dvc:workspace"),
            runs_queue_name=env.get("ARQ_RUNS_QUEUE", env.get("ARQ_QUEUE", "dvc:workspace") + ":runs"),
            max_concurrent_pipelines=_int(env, "MAX_CONCURRENT_PIPELINES", 5),
            default_run_timeout_seconds=_float(env, "RUN_TIMEOUT_SECONDS", 3600.0),
            heartbeat_seconds=_float(env, "RUN_HEARTBEAT_SECONDS", 2.0),
            lost_after_seconds=_float(env, "RUN_LOST_AFTER_SECONDS", 30.0),
            job_wait_seconds=_float(env, "JOB_WAIT_SECONDS", 30.0),
            clone_wait_seconds=_float(env, "CLONE_WAIT_SECONDS", 120.0),
            workspace_write_wait_seconds=_float(env, "WORKSPACE_WRITE_WAIT_SECONDS", 20.0),
            workspace_read_wait_seconds=_float(env, "WORKSPACE_READ_WAIT_SECONDS", 5.0),
            max_request_bytes=_int(env, "MAX_REQUEST_BYTES", 1024 * 1024),
            max_upload_bytes=_int(env, "MAX_UPLOAD_BYTES", 50 * 1024 * 1024),
            max_text_file_bytes=_int(env, "MAX_TEXT_FILE_BYTES", 1024 * 1024),
            max_page_size=_int(env, "MAX_PAGE_SIZE", 100),
            graphiql=_bool(env, "GRAPHIQL", True),
            introspection=_bool(env, "GRAPHQL_INTROSPECTION", True),
            max_query_depth=_int(env, "GRAPHQL_MAX_DEPTH", 12),
            max_aliases=_int(env, "GRAPHQL_MAX_ALIASES", 30),
            max_tokens=_int(env, "GRAPHQL_MAX_TOKENS", 3000),
            work_requests_per_minute=_int(env, "WORK_REQUESTS_PER_MINUTE", 120),
            max_tokens_per_user=_int(env, "MAX_TOKENS_PER_USER", 50),
            repository_url_schemes=tuple(
                s.strip().lower() for s in env.get("REPOSITORY_URL_SCHEMES", "https").split(",") if s.strip()
            ),
            allowed_local_repository_roots=tuple(
                Path(p).resolve() for p in env.get("ALLOWED_LOCAL_REPOSITORY_ROOTS", "").split(os.pathsep) if p
            ),
            ws_token_check_seconds=_float(env, "WS_TOKEN_CHECK_SECONDS", 60.0),
            ws_max_operations_per_connection=_int(env, "WS_MAX_OPERATIONS_PER_CONNECTION", 50),
            ws_max_operations_per_user=_int(env, "WS_MAX_OPERATIONS_PER_USER", 500),
        )
