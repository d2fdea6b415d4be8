"""Experiments: a run of a pipeline with parameter overrides, in a copy of its workspace, saved as a DVC experiment.

An override is what ``dvc exp run -S file:key=value`` takes; its value is written as DVC's Hydra override grammar
reads it (a YAML-like scalar or list). Checks here are the syntax; whether the key exists in the file is DVC's
verdict, asked by a worker before anything is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any

from app.domain.errors import Issue
from app.domain.results import ResultKind, ResultsSnapshot
from app.domain.runs import RunState

DEFAULT_PARAMS_FILE = "params.yaml"
MAX_OVERRIDES = 50
MAX_VALUE_LENGTH = 1000
MAX_FILE_LENGTH = 300
MAX_NAME_LENGTH = 64
# A dotted key path as DVC prints params (`train.opt.lr`); list items by index (`layers.0`).
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+){0,31}")
# A DVC experiment name is a git ref component (refs/exps/<baseline>/<name>).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class ExperimentState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def finished(self) -> bool:
        return self not in (ExperimentState.QUEUED, ExperimentState.RUNNING)

    @classmethod
    def of_run(cls, state: RunState) -> ExperimentState:
        return cls(state.value)


class ExperimentSource(StrEnum):
    SERVICE = "service"
    """Queued through the API, run by a worker (it has a run)."""
    DVC = "dvc"
    """Made by DVC itself (``dvc exp run``, pushed to the repository): found in ``refs/exps``, it has no run."""


@dataclass(frozen=True, slots=True)
class ParamOverride:
    """One ``-S file:key=value`` of ``dvc exp run``."""

    file: str
    key: str
    value: str

    @property
    def dvc_override(self) -> str:
        """As DVC's Hydra override parser reads it (``train.lr=0.1``)."""
        return f"{self.key}={self.value}"

    def to_dict(self) -> dict[str, str]:
        return {"file": self.file, "key": self.key, "value": self.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParamOverride:
        return cls(file=str(data["file"]), key=str(data["key"]), value=str(data["value"]))


def overrides_by_file(overrides: list[ParamOverride]) -> dict[str, list[str]]:
    """What DVC's ``to_path_overrides`` makes of ``-S`` arguments: the overrides of each file, in order."""
    grouped: dict[str, list[str]] = {}
    for override in overrides:
        grouped.setdefault(override.file, []).append(override.dvc_override)
    return grouped


@dataclass(frozen=True, slots=True)
class Experiment:
    id: str
    project_id: str
    pipeline_id: str
    pipeline_name: str
    name: str
    base_rev: str | None
    """As asked; None: the last commit plus the working tree's changes."""
    set_params: list[ParamOverride]
    state: ExperimentState
    run_id: str | None
    """Its run; None for one made by DVC (``source`` DVC)."""
    created_by: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    base_sha: str | None = None
    """The commit the copy was made from (the DVC experiment's baseline)."""
    exp_ref: str | None = None
    """The DVC experiment's git ref (``refs/exps/...``), once saved."""
    exp_rev: str | None = None
    baseline: ResultsSnapshot | None = None
    """Params and metrics of the copy before the overrides: what deltas are taken against."""
    sweep_id: str | None = None
    max_parallel: int = 0
    """Of its sweep: how many of the sweep's experiments may run at once (0: the worker's CPUs)."""
    source: ExperimentSource = ExperimentSource.SERVICE
    results: ResultsSnapshot | None = None
    """Of one made by DVC: its params and metrics as DVC shows them (one the service made has its run's)."""

    @property
    def own_run(self) -> str:
        """Its run's id, for an experiment the service runs (one made by DVC is never executed by the service)."""
        if self.run_id is None:
            raise ValueError(f"experiment {self.id} was made by DVC and has no run")
        return self.run_id


@dataclass(frozen=True, slots=True)
class ExperimentCommit:
    """A saved experiment made a commit on the workspace's branch."""

    sha: str
    branch: str
    files: list[str]
    """What the commit changed: what the experiment changed against its base."""


def check_overrides(overrides: list[ParamOverride], *, path: str = "setParams") -> list[Issue]:
    issues: list[Issue] = []
    if len(overrides) > MAX_OVERRIDES:
        return [Issue(path=path, message=f"at most {MAX_OVERRIDES} overrides")]
    seen: set[tuple[str, str]] = set()
    for index, override in enumerate(overrides):
        where = f"{path}[{index}]"
        issues += [Issue(path=f"{where}.file", message=m) for m in _file_problems(override.file)]
        if not _KEY.fullmatch(override.key):
            issues.append(Issue(path=f"{where}.key", message=f"{override.key[:60]!r} is not a dotted key path"))
        if not override.value.strip() or len(override.value) > MAX_VALUE_LENGTH or "\n" in override.value:
            issues.append(
                Issue(path=f"{where}.value", message=f"give one line of at most {MAX_VALUE_LENGTH} characters")
            )
        if (override.file, override.key) in seen:
            issues.append(Issue(path=f"{where}.key", message=f"{override.key!r} of {override.file} is set twice"))
        seen.add((override.file, override.key))
    return issues


def _file_problems(file: str) -> list[str]:
    if not file or len(file) > MAX_FILE_LENGTH or "\\" in file or "\0" in file:
        return ["not a path relative to the project root"]
    parts = PurePosixPath(file).parts
    if file.startswith("/") or ".." in parts or parts[0] in (".git", ".dvc"):
        return [f"{file[:60]!r} is outside the workspace"]
    return []


def check_name(name: str) -> list[Issue]:
    if len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name) or ".." in name or name.endswith((".lock", ".")):
        return [Issue(path="name", message=f"{name[:60]!r} is not a valid experiment name (letters, digits, . _ -)")]
    return []


def default_name(experiment_id: str) -> str:
    return f"exp-{experiment_id[-8:]}"


@dataclass(frozen=True, slots=True)
class TableColumn:
    kind: ResultKind
    file: str
    key: str


@dataclass(frozen=True, slots=True)
class TableCell:
    value_json: str | None
    number: float | None
    delta: float | None
    """number - the base's number, when both are numbers."""


@dataclass(frozen=True, slots=True)
class TableRow:
    experiment: Experiment
    has_results: bool
    cells: list[TableCell]


@dataclass(frozen=True, slots=True)
class ExperimentsTable:
    columns: list[TableColumn]
    rows: list[TableRow]
    sorted_by: TableColumn | None = None
    notes: list[str] = field(default_factory=list)


def _values(snapshot: ResultsSnapshot | None) -> dict[tuple[ResultKind, str, str], tuple[str | None, float | None]]:
    if snapshot is None:
        return {}
    found = {(ResultKind.PARAMS, e.file, e.key): (e.value_json, e.number) for e in snapshot.params}
    found |= {(ResultKind.METRICS, e.file, e.key): (e.value_json, e.number) for e in snapshot.metrics}
    return found


def build_table(
    experiments: list[Experiment],
    snapshots: dict[str, ResultsSnapshot],
    *,
    sort_by: tuple[str, str] | None = None,
    descending: bool = True,
) -> ExperimentsTable:
    """A row per experiment (newest first, or by the metric ``sort_by`` = (file, key), rows without it last), a
    column per param then metric, each delta against that experiment's own base. ``snapshots`` are by experiment
    id."""
    keys: dict[tuple[ResultKind, str, str], None] = {}
    for experiment in experiments:
        for key in _values(snapshots.get(experiment.id)):
            keys.setdefault(key, None)
    ordered = sorted(keys, key=lambda c: (c[0] != ResultKind.PARAMS, c[1], c[2]))
    rows: list[TableRow] = []
    for experiment in experiments:
        own = _values(snapshots.get(experiment.id))
        base = _values(experiment.baseline)
        cells = []
        for column in ordered:
            value_json, number = own.get(column, (None, None))
            reference = base.get(column, (None, None))[1]
            delta = number - reference if number is not None and reference is not None else None
            cells.append(TableCell(value_json=value_json, number=number, delta=delta))
        rows.append(TableRow(experiment=experiment, has_results=experiment.id in snapshots, cells=cells))
    chosen: TableColumn | None = None
    notes: list[str] = []
    if sort_by is not None:
        column_key = (ResultKind.METRICS, sort_by[0], sort_by[1])
        chosen = TableColumn(kind=ResultKind.METRICS, file=sort_by[0], key=sort_by[1])
        if column_key not in keys:
            notes.append(f"no experiment has the metric {sort_by[1]!r} of {sort_by[0]}: rows are newest first")
        else:
            index = ordered.index(column_key)
            present = [r for r in rows if r.cells[index].number is not None]
            absent = [r for r in rows if r.cells[index].number is None]
            present.sort(key=lambda r: r.cells[index].number or 0.0, reverse=descending)
            rows = present + absent
    return ExperimentsTable(
        columns=[TableColumn(kind=k, file=f, key=key) for k, f, key in ordered],
        rows=rows,
        sorted_by=chosen,
        notes=notes,
    )


MAX_SWEEP_EXPERIMENTS = 100
MAX_SWEEP_AXES = 10
MAX_SWEEP_PARALLEL = 64


@dataclass(frozen=True, slots=True)
class SweepAxis:
    """One param of a sweep and the values it takes."""

    file: str
    key: str
    values: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "key": self.key, "values": list(self.values)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepAxis:
        return cls(file=str(data["file"]), key=str(data["key"]), values=[str(v) for v in data["values"]])


def sweep_points(grid: list[SweepAxis]) -> list[list[ParamOverride]]:
    """The cartesian product of the grid, first axis slowest (as ``dvc exp run -S a=1,2 -S b=3,4 --queue``)."""
    points: list[list[ParamOverride]] = [[]]
    for axis in grid:
        points = [
            [*point, ParamOverride(file=axis.file, key=axis.key, value=value)]
            for point in points
            for value in axis.values
        ]
    return points


def check_grid(grid: list[SweepAxis], max_parallel: int) -> list[Issue]:
    if not grid:
        return [Issue(path="grid", message="name at least one param")]
    if len(grid) > MAX_SWEEP_AXES:
        return [Issue(path="grid", message=f"at most {MAX_SWEEP_AXES} params")]
    issues: list[Issue] = []
    for index, axis in enumerate(grid):
        if not axis.values:
            issues.append(Issue(path=f"grid[{index}].values", message="give at least one value"))
        elif len(set(axis.values)) != len(axis.values):
            issues.append(Issue(path=f"grid[{index}].values", message="a value is given twice"))
    # Each axis as one override (keys, files, duplicates), and each value as a value.
    issues += check_overrides(
        [ParamOverride(file=a.file, key=a.key, value=a.values[0]) for a in grid if a.values], path="grid"
    )
    for index, axis in enumerate(grid):
        for value in axis.values:
            if not value.strip() or len(value) > MAX_VALUE_LENGTH or "\n" in value:
                issues.append(
                    Issue(
                        path=f"grid[{index}].values", message=f"give one line of at most {MAX_VALUE_LENGTH} characters"
                    )
                )
                break
    count = 1
    for axis in grid:
        count *= max(1, len(axis.values))
    if count > MAX_SWEEP_EXPERIMENTS:
        issues.append(Issue(path="grid", message=f"{count} experiments; a sweep makes at most {MAX_SWEEP_EXPERIMENTS}"))
    if not 0 <= max_parallel <= MAX_SWEEP_PARALLEL:
        issues.append(Issue(path="maxParallel", message=f"must be between 0 (worker CPUs) and {MAX_SWEEP_PARALLEL}"))
    return issues


@dataclass(frozen=True, slots=True)
class Sweep:
    id: str
    project_id: str
    pipeline_id: str
    name: str
    grid: list[SweepAxis]
    max_parallel: int
    """Experiments of the sweep running at once; 0: the worker's CPUs."""
    base_rev: str | None
    created_by: str
    created_at: datetime
    cancel_requested: bool = False


@dataclass(frozen=True, slots=True)
class SweepProgress:
    """A sweep with its experiments; its state follows from theirs."""

    sweep: Sweep
    experiments: list[Experiment]

    def count(self, state: ExperimentState) -> int:
        return sum(1 for e in self.experiments if e.state == state)

    @property
    def state(self) -> ExperimentState:
        states = {e.state for e in self.experiments}
        if not states or states == {ExperimentState.QUEUED}:
            return ExperimentState.QUEUED
        if not all(s.finished for s in states):
            return ExperimentState.RUNNING
        if states == {ExperimentState.SUCCEEDED}:
            return ExperimentState.SUCCEEDED
        if self.sweep.cancel_requested or ExperimentState.CANCELLED in states:
            return ExperimentState.CANCELLED
        return ExperimentState.FAILED
