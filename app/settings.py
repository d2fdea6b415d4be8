"""Settings, read once from the environment into one typed, validated object (pydantic-settings).

Each setting has one environment variable (its alias below). A value that does not parse stops start-up with
:class:`InvalidSettings`, naming the variable. Variables that are unset (or empty) take the defaults; locally,
MONGODB_URL / REDIS_URL / WORKSPACE_ROOT also come from ``.data/services.env``, which ``make run`` writes while it
runs, so ``python -m app`` in another terminal finds the services it started.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
SERVICES_FILE = Path(os.environ.get("STACK_DATA_DIR") or REPOSITORY_ROOT / ".data") / "services.env"
"""The URLs of the services ``make run`` started (see .ci/with-services.sh, which also honours STACK_DATA_DIR);
absent anywhere else."""


class InvalidSettings(SystemExit):
    """A setting's value does not parse. A SystemExit, so every entry point (uvicorn importing app.main, the
    worker, the CLI) stops with this one message instead of a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=SERVICES_FILE,
        env_ignore_empty=True,
        case_sensitive=True,
        extra="ignore",
        frozen=True,
        use_attribute_docstrings=True,
    )

    mongodb_url: str = Field("mongodb://127.0.0.1:27017", validation_alias="MONGODB_URL")
    mongodb_database: str = Field("dvc_pipelines", validation_alias="MONGODB_DATABASE")
    redis_url: str = Field("redis://127.0.0.1:6379", validation_alias="REDIS_URL")
    workspace_root: Path = Field(Path(".data/workspaces"), validation_alias="WORKSPACE_ROOT")
    project_environments_root: Path | None = Field(None, validation_alias="PROJECT_ENVIRONMENTS_ROOT")
    """Where the projects' Python environments are built and kept (default: ``environments`` beside WORKSPACE_ROOT);
    never inside WORKSPACE_ROOT, where a stage could change another project's environment."""
    environment_retention_days: float = Field(30.0, validation_alias="ENVIRONMENT_RETENTION_DAYS", gt=0)
    """A project environment that no project's requirements file gives any more is removed once no run has used it
    for this long (workers/environments/cleanup.py)."""
    environment_cleanup_seconds: int = Field(3600, validation_alias="ENVIRONMENT_CLEANUP_SECONDS", ge=60, le=86400)
    """How often a worker looks for environments to remove (and once at its start-up)."""
    queue_name: str = Field("dvc:workspace", validation_alias="ARQ_QUEUE")
    """The arq queue for workspace operations (writes, validation, status, dry runs, DAG)."""
    runs_queue_name: str = Field("", validation_alias="ARQ_RUNS_QUEUE")
    """The arq queue for pipeline runs, so long runs never delay quick operations (default: ARQ_QUEUE + ":runs")."""
    max_concurrent_pipelines: int = Field(5, validation_alias="MAX_CONCURRENT_PIPELINES", ge=1)
    """Runs one worker process executes at once; more wait in the queue."""
    default_run_timeout_seconds: float = Field(3600.0, validation_alias="RUN_TIMEOUT_SECONDS", gt=0)
    heartbeat_seconds: float = Field(2.0, validation_alias="RUN_HEARTBEAT_SECONDS", gt=0)
    lost_after_seconds: float = Field(30.0, validation_alias="RUN_LOST_AFTER_SECONDS", gt=0)
    """A RUNNING run whose worker has been silent this long is marked FAILED ("worker lost")."""
    job_wait_seconds: float = Field(30.0, validation_alias="JOB_WAIT_SECONDS", gt=0)
    """How long a request waits for a worker's answer before saying no worker answered."""
    clone_wait_seconds: float = Field(120.0, validation_alias="CLONE_WAIT_SECONDS", gt=0)
    workspace_write_wait_seconds: float = Field(20.0, validation_alias="WORKSPACE_WRITE_WAIT_SECONDS", ge=0)
    """How long a write waits for the workspace lock before answering WorkspaceBusy."""
    workspace_read_wait_seconds: float = Field(5.0, validation_alias="WORKSPACE_READ_WAIT_SECONDS", ge=0)
    """How long a read (status, dry run, DAG) waits for the lock before answering from what is known."""
    max_request_bytes: int = Field(1024 * 1024, validation_alias="MAX_REQUEST_BYTES", ge=1)
    max_upload_bytes: int = Field(50 * 1024 * 1024, validation_alias="MAX_UPLOAD_BYTES", ge=1)
    max_text_file_bytes: int = Field(1024 * 1024, validation_alias="MAX_TEXT_FILE_BYTES", ge=1)
    max_page_size: int = Field(100, validation_alias="MAX_PAGE_SIZE", ge=1)
    graphiql: bool = Field(True, validation_alias="GRAPHIQL")
    graphiql_assets_dir: Path = Field(REPOSITORY_ROOT / ".data" / "graphiql", validation_alias="GRAPHIQL_ASSETS_DIR")
    """GraphiQL's pinned browser assets (.ci/graphiql-assets.sh); without them the page loads them from a CDN."""
    introspection: bool = Field(True, validation_alias="GRAPHQL_INTROSPECTION")
    max_query_depth: int = Field(12, validation_alias="GRAPHQL_MAX_DEPTH", ge=1)
    max_aliases: int = Field(30, validation_alias="GRAPHQL_MAX_ALIASES", ge=1)
    max_tokens: int = Field(3000, validation_alias="GRAPHQL_MAX_TOKENS", ge=1)
    work_requests_per_minute: int = Field(120, validation_alias="WORK_REQUESTS_PER_MINUTE", ge=1)
    """Per user (all their tokens together): mutations that start work in a worker (runs, writes, validation, ...)."""
    max_tokens_per_user: int = Field(50, validation_alias="MAX_TOKENS_PER_USER", ge=1)
    """Live (unrevoked, unexpired) API tokens one user may hold."""
    repository_url_schemes: Annotated[tuple[str, ...], NoDecode] = Field(
        ("https",), validation_alias="REPOSITORY_URL_SCHEMES"
    )
    """Remote URL schemes a project may be cloned from (comma-separated; add ssh to allow ssh:// and user@host:path)."""
    allowed_local_repository_roots: Annotated[tuple[Path, ...], NoDecode] = Field(
        (), validation_alias="ALLOWED_LOCAL_REPOSITORY_ROOTS"
    )
    """Folders whose local repositories may be cloned (os.pathsep-separated); none by default. WORKSPACE_ROOT and the
    service's own install are refused even under them."""
    ws_token_check_seconds: float = Field(60.0, validation_alias="WS_TOKEN_CHECK_SECONDS", gt=0)
    """How often an open WebSocket's token is checked again (it is also checked on every new operation)."""
    ws_max_operations_per_connection: int = Field(50, validation_alias="WS_MAX_OPERATIONS_PER_CONNECTION", ge=1)
    """Open operations (subscriptions, queries, mutations) one WebSocket may hold at once."""
    stages_unsandboxed: bool = Field(False, validation_alias="STAGES_UNSANDBOXED")
    """Run stage commands without their bubblewrap sandbox, as the worker's own user (meant for machines that cannot
    create namespaces; /health says so). Unset, a worker that cannot build the sandbox refuses to start them."""
    stage_sandbox_uid: int = Field(65534, validation_alias="STAGE_SANDBOX_UID", ge=1)
    """The unprivileged user (and group) id stage commands run as when the worker runs as root."""
    ws_max_operations_per_user: int = Field(500, validation_alias="WS_MAX_OPERATIONS_PER_USER", ge=1)
    """Open WebSocket operations one user may hold at once in one API process, across all their sockets."""

    @model_validator(mode="before")
    @classmethod
    def _runs_queue_follows_queue(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("ARQ_RUNS_QUEUE"):
            data = {**data, "ARQ_RUNS_QUEUE": (data.get("ARQ_QUEUE") or "dvc:workspace") + ":runs"}
        return data

    @field_validator("repository_url_schemes", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip().lower() for part in value.split(",") if part.strip())
        return value

    @field_validator("allowed_local_repository_roots", mode="before")
    @classmethod
    def _path_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(Path(part).resolve() for part in value.split(os.pathsep) if part)
        return value

    @field_validator("workspace_root", "graphiql_assets_dir", "project_environments_root")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        return path.resolve() if path is not None else None

    @field_validator("project_environments_root")
    @classmethod
    def _outside_workspaces(cls, root: Path | None, info: ValidationInfo) -> Path | None:
        workspaces = info.data.get("workspace_root")
        if root is None or workspaces is None:
            return root
        if root.is_relative_to(workspaces) or workspaces.is_relative_to(root):
            raise ValueError(f"must be outside WORKSPACE_ROOT ({workspaces}), neither in it nor holding it")
        return root

    @property
    def environments_root(self) -> Path:
        """PROJECT_ENVIRONMENTS_ROOT, or its default beside WORKSPACE_ROOT."""
        return self.project_environments_root or self.workspace_root.parent / "environments"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings from the process environment (and .data/services.env), or from ``env`` alone."""
        try:
            if env is None:
                return cls()
            return cls.model_validate({name: value for name, value in env.items() if value != ""})
        except ValidationError as error:
            raise InvalidSettings(describe(error)) from None


def describe(error: ValidationError) -> str:
    """One line per bad setting, each naming its environment variable."""
    problems = []
    for issue in error.errors():
        variable = ".".join(str(part) for part in issue["loc"]) or "settings"
        problems.append(f"{variable}={issue.get('input')!r}: {issue['msg']}")
    return "invalid setting " + "; ".join(problems)
