"""What the service answers and what DVC answers, put in one comparable form.

The API shows a stage's params as ``key`` (params.yaml), ``file:key`` or ``file:`` (the whole file), and a list
``cmd`` as its items joined with `` && `` (DVC runs them one after another, stopping at the first failure); DVC
shows ``(file, key)`` pairs and the list. Both sides are mapped to the same records here, and nothing else is
translated: names, paths (as written, relative to the stage's wdir), wdir (relative to the project root), flags.
"""

from __future__ import annotations

import hashlib
import posixpath
import shutil
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PARAMS = "params.yaml"
# DVC's scratch space (locks, state database): never compared, never copied (a copy taken while the service
# holds a lock must not inherit it).
SCRATCH = (".git", ".dvc/tmp")
ORDERLESS = {".gitignore"}
SHOWN_BYTES = 512


def address(pipeline_path: str, name: str) -> str:
    """One spelling for a stage on both sides: ``<dvc.yaml path>:<name>``; a data source (.dvc file) by its path."""
    return name if ":" in name or name.endswith(".dvc") else f"{pipeline_path}:{name}"


def dvc_address(addressing: str) -> str:
    """DVC's cwd-relative addressing (``train`` for the root dvc.yaml) as ``<dvc.yaml path>:<name>``.

    A .dvc file (a data source) is addressed by its path and stays so.
    """
    return addressing if ":" in addressing or addressing.endswith(".dvc") else f"dvc.yaml:{addressing}"


def param_pair(entry: str) -> tuple[str, str]:
    file, sep, key = entry.rpartition(":")
    return (file, key) if sep else (DEFAULT_PARAMS, entry)


def api_stage(stage: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": stage["name"],
        "cmd": stage["command"],
        "wdir": stage["wdir"],
        "deps": list(stage["deps"]),
        "params": sorted(param_pair(p) for p in stage["params"]),
        "outs": list(stage["outs"]),
        "metrics": list(stage["metrics"]),
        "plots": list(stage["plots"]),
        "frozen": stage["frozen"],
        "always_changed": stage["alwaysChanged"],
    }


def dvc_stage(record: dict[str, Any]) -> dict[str, Any]:
    cmd = record["cmd"]
    return {
        "name": record["name"],
        "cmd": " && ".join(cmd) if isinstance(cmd, list) else cmd,
        "wdir": record["wdir"],
        "deps": list(record["deps"]),
        "params": sorted((file, key) for file, key in record["params"]),
        "outs": list(record["outs"]),
        "metrics": list(record["metrics"]),
        "plots": list(record["plots"]),
        "frozen": record["frozen"],
        "always_changed": record["always_changed"],
    }


def dvc_changes(entries: list[Any], record: dict[str, Any]) -> list[tuple[str, str | None, str | None, str | None]]:
    """One stage's `dvc status --json` entries as (kind, path, key, state), paths relative to the root."""
    params_files = {posixpath.normpath(posixpath.join(record["wdir"], file)) for file, _ in record["params"]}
    changes: list[tuple[str, str | None, str | None, str | None]] = []
    for entry in entries:
        if entry in ("changed command", "changed checksum"):
            changes.append(("COMMAND", None, None, None))
        elif entry == "always changed":
            changes.append(("ALWAYS_CHANGED", None, None, None))
        elif isinstance(entry, dict):
            for group, states in entry.items():
                for path, state in states.items():
                    if isinstance(state, dict):
                        changes.extend(("PARAM", path, str(key), str(s)) for key, s in state.items())
                    elif group == "changed deps" and path in params_files:
                        changes.append(("PARAM", path, None, str(state)))
                    else:
                        changes.append(("DEP" if group == "changed deps" else "OUT", path, None, str(state)))
        else:
            changes.append(("UNKNOWN", str(entry), None, None))
    return sorted(changes, key=repr)


# Not in `dvc status <stage>`'s own entries: a missing dvc.lock entry, and (with --with-deps) another pipeline's
# out-of-date stage upstream. Both are checked on their own (NEVER_RUN against dvc.lock, UPSTREAM against
# `dvc status --with-deps`).
BEYOND_OWN_ENTRIES = {"NEVER_RUN", "UPSTREAM"}


def api_changes(stage_status: dict[str, Any]) -> list[tuple[str, str | None, str | None, str | None]]:
    """The API's changes of one stage that `dvc status` reports among the stage's own entries."""
    return sorted(
        (
            (c["kind"], c["path"], c["key"], c["state"])
            for c in stage_status["changes"]
            if c["kind"] not in BEYOND_OWN_ENTRIES
        ),
        key=repr,
    )


def upstream_causes(status: dict[str, Any]) -> list[str]:
    """Every other pipeline's stage the API names as an UPSTREAM cause, as ``<dvc.yaml>:<name>``."""
    causes = {
        f"{c['path']}:{c.get('stage')}" for s in status["stages"] for c in s["changes"] if c["kind"] == "UPSTREAM"
    }
    return sorted(causes)


def locked_stages(root: Path, pipeline_path: str) -> set[str]:
    """The stage names dvc.lock next to ``pipeline_path`` has an entry for."""
    lock = root / posixpath.dirname(pipeline_path) / "dvc.lock"
    data = yaml.safe_load(lock.read_text()) if lock.exists() else None
    return set((data or {}).get("stages") or {})


def snapshot(workspace: Path, destination: Path) -> Path:
    """A copy of the workspace as it is now, for DVC to work on (without DVC's scratch space)."""

    def ignore(folder: str, names: list[str]) -> list[str]:
        return ["tmp"] if Path(folder).name == ".dvc" and "tmp" in names else []

    shutil.copytree(workspace, destination, symlinks=True, ignore=ignore)
    return destination


def tree(root: Path) -> dict[str, Any]:
    """Every file of a workspace by content: its text or hash; dvc.lock parsed; .gitignore as a set of lines.

    dvc.lock and .gitignore are written in the order stages finish, which parallel execution may change
    without changing what they say.
    """
    files: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if any(relative == s or relative.startswith(s + "/") for s in SCRATCH):
            continue
        if path.is_symlink():
            files[relative] = f"link:{path.readlink()}"
        elif path.is_dir():
            continue
        elif path.name == "dvc.lock":
            files[relative] = yaml.safe_load(path.read_text())
        elif path.name in ORDERLESS:
            files[relative] = sorted(set(path.read_text().splitlines()))
        else:
            files[relative] = _content(path.read_bytes())
    return files


def _content(data: bytes) -> str:
    """Small text as itself (readable in a failure), anything else by its hash."""
    if len(data) <= SHOWN_BYTES:
        try:
            return data.decode()
        except UnicodeDecodeError:
            pass
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tree_difference(service: dict[str, Any], dvc: dict[str, Any]) -> dict[str, Any]:
    """Files that differ: {path: {"service": ..., "dvc": ...}} (None where one side has no such file).

    For a dvc.lock on both sides, only the stage entries that differ are shown.
    """
    difference: dict[str, Any] = {}
    for path in sorted(set(service) | set(dvc)):
        ours, theirs = service.get(path), dvc.get(path)
        if ours == theirs:
            continue
        if path.endswith("dvc.lock") and isinstance(ours, dict) and isinstance(theirs, dict):
            ours_stages, their_stages = ours.get("stages") or {}, theirs.get("stages") or {}
            names = sorted(set(ours_stages) | set(their_stages))
            ours = {n: ours_stages.get(n) for n in names if ours_stages.get(n) != their_stages.get(n)}
            theirs = {n: their_stages.get(n) for n in names if ours_stages.get(n) != their_stages.get(n)}
        difference[path] = {"service": ours, "dvc": theirs}
    return difference
