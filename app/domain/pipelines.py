"""Pipelines and their stages, and what DVC says about them (status, dry-run plan, DAG).

Every type converts to and from plain dicts, because that is what crosses arq and MongoDB.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from app.domain.errors import Issue


@dataclass(frozen=True, slots=True)
class StageSpec:
    """One DVC stage as users define it.

    Paths (deps, outs, metrics, plots) are relative to ``wdir``, which is itself relative to the
    project root; pipelines created through the API always use ``wdir='.'``. ``params`` entries are
    ``key`` (read from params.yaml) or ``file:key``.
    """

    name: str
    cmd: str
    deps: list[str] = field(default_factory=list)
    outs: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    description: str | None = None
    frozen: bool = False
    always_changed: bool = False
    wdir: str = "."

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageSpec:
        return cls(
            name=data["name"],
            cmd=data["cmd"],
            deps=list(data.get("deps") or []),
            outs=list(data.get("outs") or []),
            params=list(data.get("params") or []),
            metrics=list(data.get("metrics") or []),
            plots=list(data.get("plots") or []),
            description=data.get("description"),
            frozen=bool(data.get("frozen", False)),
            always_changed=bool(data.get("always_changed", False)),
            wdir=data.get("wdir") or ".",
        )


GROUP_JOIN = "@"
"""DVC names the stages a ``foreach``/``matrix`` definition generates ``<group>@<key>`` (dvc.parsing.JOIN)."""


def target_names(stages: list[StageSpec]) -> set[str]:
    """The names `dvc repro <name>` may be given for these stages: each stage, and each foreach/matrix group.

    Which prefixes really are groups only DVC knows (the worker resolves targets with DVC's own loader);
    this is the cheap check that lets the API refuse a name that can match nothing.
    """
    names = {stage.name for stage in stages}
    for stage in stages:
        parts = stage.name.split(GROUP_JOIN)
        names.update(GROUP_JOIN.join(parts[:end]) for end in range(1, len(parts)))
    return names


class PipelineSource(StrEnum):
    API = "api"
    REPOSITORY = "repository"


@dataclass(frozen=True, slots=True)
class ValidationReport:
    valid: bool
    issues: list[Issue]
    checked_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "issues": [i.to_dict() for i in self.issues],
            "checked_at": self.checked_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationReport:
        return cls(
            valid=bool(data["valid"]),
            issues=[Issue.from_dict(i) for i in data.get("issues", [])],
            checked_at=data["checked_at"],
        )


@dataclass(frozen=True, slots=True)
class Pipeline:
    id: str
    project_id: str
    name: str
    path: str
    """The dvc.yaml file, relative to the project root."""
    description: str | None
    source: PipelineSource
    stages: list[StageSpec]
    version: int
    validation: ValidationReport | None
    created_at: datetime
    updated_at: datetime
    last_run_id: str | None = None
    run_count: int = 0


@dataclass(frozen=True, slots=True)
class StageOutcome:
    """What happened to one stage of a create or update request."""

    name: str
    ok: bool
    error: str | None = None


class ChangeKind(StrEnum):
    DEP = "dep"
    OUT = "out"
    PARAM = "param"
    COMMAND = "command"
    ALWAYS_CHANGED = "always_changed"
    NEVER_RUN = "never_run"
    """The stage has no entry in dvc.lock yet."""
    UPSTREAM = "upstream"
    """A stage of another pipeline that this one depends on is out of date (`dvc status --with-deps`)."""


@dataclass(frozen=True, slots=True)
class StageChange:
    """One reason DVC gives for a stage being out of date.

    ``path`` is the dep/out/params file, ``key`` the params key, ``state`` DVC's word for it
    ("modified", "new", "deleted", "not in cache", ...). For UPSTREAM, ``path`` is the other
    pipeline's dvc.yaml and ``stage`` the out-of-date stage there.
    """

    kind: ChangeKind
    path: str | None = None
    key: str | None = None
    state: str | None = None
    stage: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "path": self.path, "key": self.key, "state": self.state, "stage": self.stage}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageChange:
        return cls(
            kind=ChangeKind(data["kind"]),
            path=data.get("path"),
            key=data.get("key"),
            state=data.get("state"),
            stage=data.get("stage"),
        )


@dataclass(frozen=True, slots=True)
class StageStatus:
    name: str
    up_to_date: bool
    frozen: bool
    changes: list[StageChange]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "up_to_date": self.up_to_date,
            "frozen": self.frozen,
            "changes": [c.to_dict() for c in self.changes],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageStatus:
        return cls(
            name=data["name"],
            up_to_date=bool(data["up_to_date"]),
            frozen=bool(data.get("frozen", False)),
            changes=[StageChange.from_dict(c) for c in data.get("changes", [])],
        )


class PlanCertainty(StrEnum):
    WILL_RUN = "will_run"
    """The stage itself is changed (or forced): a run executes it."""
    IF_UPSTREAM_CHANGES = "if_upstream_changes"
    """The stage is up to date now, but consumes outputs of a stage that will run: it runs if those change."""


@dataclass(frozen=True, slots=True)
class PlannedStage:
    name: str
    cmd: str
    certainty: PlanCertainty
    changes: list[StageChange]
    forced: bool
    upstream: list[str]
    """Planned stages whose outputs this stage consumes."""
    data_source: bool = False
    """A `.dvc` file (made by `dvc add`), named by its path: no command; `dvc repro` hashes its data again and
    caches it when it changed."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cmd": self.cmd,
            "certainty": self.certainty.value,
            "changes": [c.to_dict() for c in self.changes],
            "forced": self.forced,
            "upstream": list(self.upstream),
            "data_source": self.data_source,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlannedStage:
        return cls(
            name=data["name"],
            cmd=data["cmd"],
            certainty=PlanCertainty(data["certainty"]),
            changes=[StageChange.from_dict(c) for c in data.get("changes", [])],
            forced=bool(data.get("forced", False)),
            upstream=list(data.get("upstream", [])),
            data_source=bool(data.get("data_source", False)),
        )


@dataclass(frozen=True, slots=True)
class DryRunPlan:
    stages: list[PlannedStage]
    """In execution order: every stage a run with the same options may execute."""
    up_to_date: list[str]
    """Selected stages that the run will skip, whatever happens upstream."""
    stale: bool = False
    """Derived from a running run's live state and the last known status, not from DVC just now."""

    def to_dict(self) -> dict[str, Any]:
        return {"stages": [s.to_dict() for s in self.stages], "up_to_date": list(self.up_to_date), "stale": self.stale}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DryRunPlan:
        return cls(
            stages=[PlannedStage.from_dict(s) for s in data["stages"]],
            up_to_date=list(data.get("up_to_date", [])),
            stale=bool(data.get("stale", False)),
        )


@dataclass(frozen=True, slots=True)
class DagNode:
    name: str
    cmd: str
    pipeline_path: str
    """The dvc.yaml that defines the stage; another pipeline's stage appears when this one depends on it."""
    external: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class DagEdge:
    source: str
    """The upstream stage (producer)."""
    target: str
    """The downstream stage (consumer)."""
    paths: list[str]
    """The outputs of ``source`` that ``target`` depends on."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Dag:
    nodes: list[DagNode]
    edges: list[DagEdge]
    mermaid: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
            "mermaid": self.mermaid,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Dag:
        return cls(
            nodes=[DagNode(**n) for n in data["nodes"]],
            edges=[DagEdge(**e) for e in data["edges"]],
            mermaid=data["mermaid"],
        )
