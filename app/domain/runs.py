"""Runs of a pipeline and the states of their stages, with the events that tell their story."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

CANCELLED_BY_REQUEST = "cancelled by request"
"""The error of a run cancelled while it ran (and of its stages that were stopped), whoever settled it."""

ENVIRONMENT_STEP = ":environment"
"""The step of a run that builds the project's Python environment from its requirements file, before any stage.
No DVC stage can have this name (DVC refuses ':' in stage names, and another pipeline's stage shows as
``<dvc.yaml>:<stage>``), so it never collides with one."""


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def finished(self) -> bool:
        return self not in (RunState.QUEUED, RunState.RUNNING)


class StageRunState(StrEnum):
    PENDING = "pending"
    SKIPPED = "skipped"
    """Up to date, as DVC decided: its command did not run."""
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    NOT_RUN = "not_run"
    """Not started because an upstream stage failed, or the run ended first."""

    @property
    def finished(self) -> bool:
        return self not in (StageRunState.PENDING, StageRunState.RUNNING)


class Trigger(StrEnum):
    API = "api"
    RETRY = "retry"
    EXPERIMENT = "experiment"
    """The run of an experiment, in a copy of the workspace (app.domain.experiments)."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    force: bool = False
    targets: tuple[str, ...] = ()
    downstream: bool = False
    single_item: bool = False
    keep_going: bool = False
    timeout_seconds: float = 3600.0
    max_parallel: int = 0
    """How many stages may run at once; 0 means the worker's number of CPUs."""
    commit: bool = False
    """A run that succeeds commits what it changed that git tracks (workers.jobs.results)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "force": self.force,
            "targets": list(self.targets),
            "downstream": self.downstream,
            "single_item": self.single_item,
            "keep_going": self.keep_going,
            "timeout_seconds": self.timeout_seconds,
            "max_parallel": self.max_parallel,
            "commit": self.commit,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunOptions:
        return cls(
            force=bool(data.get("force", False)),
            targets=tuple(data.get("targets", ())),
            downstream=bool(data.get("downstream", False)),
            single_item=bool(data.get("single_item", False)),
            keep_going=bool(data.get("keep_going", False)),
            timeout_seconds=float(data.get("timeout_seconds", 3600.0)),
            max_parallel=int(data.get("max_parallel", 0)),
            commit=bool(data.get("commit", False)),
        )


@dataclass(frozen=True, slots=True)
class StageRun:
    name: str
    command: str
    state: StageRunState
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    peak_memory_bytes: int | None = None
    cpu_seconds: float | None = None
    log_bytes: int = 0
    error: str | None = None
    skip_reason: str | None = None

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "command": self.command,
            "state": self.state.value,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "exit_code": self.exit_code,
            "peak_memory_bytes": self.peak_memory_bytes,
            "cpu_seconds": self.cpu_seconds,
            "log_bytes": self.log_bytes,
            "error": self.error,
            "skip_reason": self.skip_reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageRun:
        return cls(
            name=data["name"],
            command=data.get("command", ""),
            state=StageRunState(data["state"]),
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            exit_code=data.get("exit_code"),
            peak_memory_bytes=data.get("peak_memory_bytes"),
            cpu_seconds=data.get("cpu_seconds"),
            log_bytes=int(data.get("log_bytes", 0)),
            error=data.get("error"),
            skip_reason=data.get("skip_reason"),
        )


@dataclass(frozen=True, slots=True)
class Run:
    id: str
    project_id: str
    pipeline_id: str
    pipeline_name: str
    state: RunState
    options: RunOptions
    triggered_by: str
    trigger: Trigger
    created_at: datetime
    stages: list[StageRun] = field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    outputs_changed: list[str] = field(default_factory=list)
    last_seq: int = 0
    retry_of: str | None = None
    worker: str | None = None
    """The worker process executing it (host:pid)."""
    commit_sha: str | None = None
    """The git commit of what it changed, once committed (option ``commit`` or commitRun)."""
    commit_note: str | None = None
    """Why nothing was committed, when a commit was asked for and none made."""
    heartbeat_at: datetime | None = None
    """When its worker last reported it alive."""
    events_bucketed: bool = False
    """Its events are stored with their buckets (app.repositories.events): every run created since they exist."""

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def count(self, state: StageRunState) -> int:
        return sum(1 for s in self.stages if s.state == state)


class EventType(StrEnum):
    RUN_STATE = "run_state"
    STAGE_STATE = "stage_state"
    LOG = "log"


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One thing that happened in a run; ``seq`` orders a run's events without gaps from 1."""

    run_id: str
    seq: int
    type: EventType
    at: datetime
    run_state: RunState | None = None
    stage: str | None = None
    stage_state: StageRunState | None = None
    text: str | None = None
    """For LOG events: the lines, as the stage printed them (stdout and stderr interleaved)."""
    offset: int | None = None
    """For LOG events: the byte offset of ``text`` in the stage's whole log."""
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "seq": self.seq,
            "type": self.type.value,
            "at": self.at,
            "run_state": self.run_state.value if self.run_state else None,
            "stage": self.stage,
            "stage_state": self.stage_state.value if self.stage_state else None,
            "text": self.text,
            "offset": self.offset,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunEvent:
        return cls(
            run_id=data["run_id"],
            seq=int(data["seq"]),
            type=EventType(data["type"]),
            at=data["at"],
            run_state=RunState(data["run_state"]) if data.get("run_state") else None,
            stage=data.get("stage"),
            stage_state=StageRunState(data["stage_state"]) if data.get("stage_state") else None,
            text=data.get("text"),
            offset=data.get("offset"),
            message=data.get("message"),
        )


@dataclass(frozen=True, slots=True)
class LogChunk:
    stage: str
    offset: int
    text: str
