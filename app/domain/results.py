"""What DVC knew about a workspace when a run ended: metrics, params and plots, as a bounded snapshot.

Metric and param files are flattened into entries (file, dotted key path, value): user data (paths, keys) is
never a MongoDB field name, and a snapshot stays a list of small records however the files are shaped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

# Bounds of one snapshot: past them it is cut and says so (``truncation``), the run never fails for it.
MAX_ENTRIES = 2000
"""Metric entries, and param entries, kept per snapshot."""
MAX_VALUE_JSON_BYTES = 4096
"""A longer value (a list of thousands of numbers) is kept as null, with a marker."""
MAX_PLOTS_JSON_BYTES = 2 * 1024 * 1024
"""All Vega-Lite specs of a snapshot together."""
MAX_IMAGE_BYTES = 4 * 1024 * 1024
MAX_IMAGES = 20


class ResultKind(StrEnum):
    METRICS = "metrics"
    PARAMS = "params"
    PLOTS = "plots"


class PlotType(StrEnum):
    VEGA = "vega"
    IMAGE = "image"


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class ResultEntry:
    """One value of a metrics or params file: ``key`` is the dotted path DVC prints (``train.opt.lr``)."""

    file: str
    key: str
    value_json: str | None
    """The value as JSON; None when it was too large to keep."""
    number: float | None = None

    @property
    def value(self) -> Any:
        return None if self.value_json is None else json.loads(self.value_json)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "key": self.key, "value": self.value_json, "number": self.number}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultEntry:
        number = data.get("number")
        return cls(
            file=data["file"],
            key=data["key"],
            value_json=data.get("value"),
            number=None if number is None else float(number),
        )


@dataclass(frozen=True, slots=True)
class FileError:
    """DVC could not read one file (a malformed metrics file, a missing plot data file)."""

    kind: ResultKind
    file: str
    message: str
    revision: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "file": self.file, "message": self.message, "revision": self.revision}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileError:
        return cls(
            kind=ResultKind(data["kind"]), file=data["file"], message=data["message"], revision=data.get("revision")
        )


@dataclass(frozen=True, slots=True)
class Plot:
    """One plot as ``dvc plots show --json`` renders it: a filled Vega-Lite spec, or an image."""

    id: str
    type: PlotType
    revisions: list[str]
    content_json: str | None = None
    """The filled Vega-Lite spec (data included), as JSON; vega plots only."""
    image_index: int | None = None
    """Which stored image of the run this is; image plots only (None when it was too large to keep)."""
    content_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type.value,
            "revisions": self.revisions,
            "content": self.content_json,
            "image_index": self.image_index,
            "content_type": self.content_type,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plot:
        return cls(
            id=data["id"],
            type=PlotType(data["type"]),
            revisions=list(data.get("revisions", [])),
            content_json=data.get("content"),
            image_index=data.get("image_index"),
            content_type=data.get("content_type"),
        )


@dataclass(frozen=True, slots=True)
class PlotImage:
    """The bytes of one image plot, stored apart from the snapshot and served by the API."""

    index: int
    plot_id: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ResultsSnapshot:
    """What DVC read from the workspace; ``truncation`` says what was cut to keep it bounded."""

    metrics: list[ResultEntry] = field(default_factory=list)
    params: list[ResultEntry] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    truncation: list[str] = field(default_factory=list)
    images: list[PlotImage] = field(default_factory=list)

    def errors_of(self, kind: ResultKind) -> list[FileError]:
        return [e for e in self.errors if e.kind == kind]

    def truncation_of(self, kind: ResultKind) -> list[str]:
        """Markers start with their kind (``metrics: ...``)."""
        return [t for t in self.truncation if t.startswith(f"{kind.value}: ")]

    def to_dict(self) -> dict[str, Any]:
        """Everything but the image bytes (stored apart)."""
        return {
            "metrics": [e.to_dict() for e in self.metrics],
            "params": [e.to_dict() for e in self.params],
            "plots": [p.to_dict() for p in self.plots],
            "errors": [e.to_dict() for e in self.errors],
            "truncation": self.truncation,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultsSnapshot:
        return cls(
            metrics=[ResultEntry.from_dict(e) for e in data.get("metrics", [])],
            params=[ResultEntry.from_dict(e) for e in data.get("params", [])],
            plots=[Plot.from_dict(p) for p in data.get("plots", [])],
            errors=[FileError.from_dict(e) for e in data.get("errors", [])],
            truncation=list(data.get("truncation", [])),
        )


@dataclass(frozen=True, slots=True)
class RunResults:
    """The snapshot taken when run ``run_id`` ended."""

    run_id: str
    project_id: str
    pipeline_id: str
    read_at: datetime
    snapshot: ResultsSnapshot


@dataclass(frozen=True, slots=True)
class Column:
    """A column of a comparison: one param or metric key of one file."""

    kind: ResultKind
    file: str
    key: str


@dataclass(frozen=True, slots=True)
class Cell:
    value_json: str | None
    number: float | None
    delta: float | None
    """number - the baseline's number, when both are numbers."""


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    run_id: str
    has_results: bool
    cells: list[Cell]


@dataclass(frozen=True, slots=True)
class Comparison:
    baseline: str
    columns: list[Column]
    rows: list[ComparisonRow]


@dataclass(frozen=True, slots=True)
class MetricPoint:
    run_id: str
    read_at: datetime
    value_json: str | None
    number: float | None


@dataclass(frozen=True, slots=True)
class DiffEntry:
    """One key that differs between two revisions, as ``dvc metrics diff --json`` reports it."""

    file: str
    key: str
    old_json: str | None
    new_json: str | None
    delta: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "key": self.key, "old": self.old_json, "new": self.new_json, "delta": self.delta}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiffEntry:
        return cls(
            file=data["file"], key=data["key"], old_json=data["old"], new_json=data["new"], delta=data.get("delta")
        )


@dataclass(frozen=True, slots=True)
class RevisionDiff:
    a: str
    b: str
    entries: list[DiffEntry]
    errors: list[FileError]


def compare(snapshots: dict[str, ResultsSnapshot | None], run_ids: list[str], baseline: str) -> Comparison:
    """One table: a row per run (in the order asked), a column per param then metric, deltas against ``baseline``."""
    columns: dict[tuple[ResultKind, str, str], None] = {}
    for run_id in run_ids:
        snapshot = snapshots.get(run_id)
        if snapshot is None:
            continue
        for kind, entries in ((ResultKind.PARAMS, snapshot.params), (ResultKind.METRICS, snapshot.metrics)):
            for entry in entries:
                columns.setdefault((kind, entry.file, entry.key), None)
    ordered = sorted(columns, key=lambda c: (c[0] != ResultKind.PARAMS, c[1], c[2]))

    def values(snapshot: ResultsSnapshot | None) -> dict[tuple[ResultKind, str, str], ResultEntry]:
        if snapshot is None:
            return {}
        found = {(ResultKind.PARAMS, e.file, e.key): e for e in snapshot.params}
        found |= {(ResultKind.METRICS, e.file, e.key): e for e in snapshot.metrics}
        return found

    base = values(snapshots.get(baseline))
    rows = []
    for run_id in run_ids:
        own = values(snapshots.get(run_id))
        cells = []
        for column in ordered:
            found = own.get(column)
            reference = base.get(column)
            number = found.number if found else None
            delta = (
                number - reference.number if number is not None and reference and reference.number is not None else None
            )
            cells.append(Cell(value_json=found.value_json if found else None, number=number, delta=delta))
        rows.append(ComparisonRow(run_id=run_id, has_results=snapshots.get(run_id) is not None, cells=cells))
    return Comparison(baseline=baseline, columns=[Column(kind=k, file=f, key=key) for k, f, key in ordered], rows=rows)
