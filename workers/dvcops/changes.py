"""DVC's per-stage status (Stage.status) as typed StageChanges.

Stage.status() answers ``{addressing: [entry, ...]}`` where an entry is one of:
``"changed command"`` (dvc.yaml stages; ``"changed checksum"`` for .dvc files), ``"always changed"``,
``{"changed deps": {path: state}}`` and ``{"changed outs": {path: state}}``. For a params dependency
the state is either a string for the whole file (``"new"`` before the first run, ``"deleted"``) or
``{key: state}`` (``"modified"``, ``"new"``, ``"deleted"``). Paths there are relative to the process's
cwd when it is inside the workspace and to the root otherwise, so they are mapped back through the
stage's own dependency objects to root-relative paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.domain.pipelines import ChangeKind, StageChange
from workers.dvcops import dvc_internals
from workers.dvcops.paths import relative_to_root
from workers.dvcops.repo import is_pipeline_stage
from workers.dvcops.stage_locks import stage_status

COMMAND_ENTRIES = {"changed command", "changed checksum"}
ALWAYS_CHANGED_ENTRY = "always changed"
GROUPS = {"changed deps": ChangeKind.DEP, "changed outs": ChangeKind.OUT}


class LockedStages:
    """Which dvc.yaml stages have an entry in their dvc.lock, each dvc.lock parsed once.

    DVC's ``lockfile_contents`` parses the YAML again on every access; asking it once per stage made
    status and plans of long pipelines quadratic (7 s for 50 stages, a time-out for 200). Only the
    stage names are needed here, so libyaml reads them (all scalars as strings, as stage names are),
    ten times faster than DVC's pure-Python round-trip parser; DVC's own reading is the fallback.
    """

    def __init__(self) -> None:
        self._by_file: dict[str, set[str]] = {}

    def __contains__(self, stage: Any) -> bool:
        path = str(stage.dvcfile.path)
        if path not in self._by_file:
            self._by_file[path] = _locked_names(stage.dvcfile)
        return bool(stage.name in self._by_file[path])


def _locked_names(dvcfile: Any) -> set[str]:
    import yaml


    lockfile = dvc_internals.lockfile_of(dvcfile)
    if lockfile.exists():  # as DVC decides it: present and not .dvcignored
        try:
            with open(lockfile.path, "rb") as file:
                data = yaml.load(file, Loader=getattr(yaml, "CBaseLoader", yaml.BaseLoader))
            if isinstance(data, dict) and isinstance(data.get("stages"), dict):
                return set(data["stages"])
        except (OSError, yaml.YAMLError):
            pass
    return set(dvcfile.lockfile_contents.get("stages") or {})


def stage_changes(root: Path, stage: Any, locked: LockedStages | None = None) -> list[StageChange]:
    """Why DVC considers ``stage`` out of date; empty when it is up to date.

    Call it inside ``reading_stages`` over the stages asked about. Pass one ``locked`` to every call
    of a loop over stages, so each dvc.lock is read once.
    """
    entries: list[Any] = next(iter(stage_status(stage).values()), [])
    changes = [StageChange(kind=ChangeKind.NEVER_RUN)] if never_run(stage, locked or LockedStages()) else []
    if not entries:
        return changes  # the usual case: no paths to name, so none are worked out
    paths = {str(item): relative_to_root(root, item.fs_path) for item in [*stage.deps, *stage.outs]}
    params_files = {str(dep) for dep in stage.deps if dvc_internals.is_params_dependency(dep)}
    for entry in entries:
        if isinstance(entry, str) and entry in COMMAND_ENTRIES:
            changes.append(StageChange(kind=ChangeKind.COMMAND))
        elif isinstance(entry, str) and entry == ALWAYS_CHANGED_ENTRY:
            changes.append(StageChange(kind=ChangeKind.ALWAYS_CHANGED))
        elif isinstance(entry, dict):
            for group, states in entry.items():
                changes.extend(_group_changes(GROUPS[group], states, paths, params_files))
        else:
            raise ValueError(f"unexpected entry in DVC's status of {stage}: {entry!r}")
    return changes


def never_run(stage: Any, locked: LockedStages) -> bool:
    """A dvc.yaml stage without an entry in its dvc.lock (DVC then has no checksums to compare)."""
    return is_pipeline_stage(stage) and stage not in locked


def _group_changes(
    kind: ChangeKind, states: dict[str, Any], paths: dict[str, str], params_files: set[str]
) -> list[StageChange]:
    changes: list[StageChange] = []
    for name, state in states.items():
        path = paths.get(name, name)
        if isinstance(state, dict):
            changes.extend(
                StageChange(kind=ChangeKind.PARAM, path=path, key=str(key), state=str(key_state))
                for key, key_state in state.items()
            )
        elif name in params_files:
            changes.append(StageChange(kind=ChangeKind.PARAM, path=path, state=str(state)))
        else:
            changes.append(StageChange(kind=kind, path=path, state=str(state)))
    return changes
