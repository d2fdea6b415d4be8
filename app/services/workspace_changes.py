"""Whether a workspace changed after a moment, told from file times alone (no DVC): what lets executePipeline
trust the validation stored with a pipeline instead of asking a worker to validate it again.

Runs change their stages' outputs, dvc.lock files, .gitignore files and DVC's own folder; none of that can make a
pipeline invalid, so those are not looked at. Anything else created, written, renamed or re-permissioned after the
moment (a file's mtime or ctime is later) counts as a change, and so does a workspace too large to walk cheaply.
Deleting a file leaves nothing to see: the API has no way to delete one, and a run whose workspace lost something
its stages need fails in DVC's own checks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

# Past this many entries the walk itself would cost what it saves: the caller validates instead.
MAX_ENTRIES = 5000
# Written by DVC (or a run) only.
RUN_PRODUCTS = frozenset({"dvc.lock", ".gitignore"})
# DVC's folder holds the cache, temporary files and state; only its configuration bears on validation.
DVC_FOLDER = ".dvc"
DVC_SETTINGS = frozenset({"config", "config.local"})
SKIPPED_AT_ROOT = frozenset({".git"})

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _TooLarge(Exception):
    pass


def changed_since(root: Path, moment: datetime) -> bool:
    """True when a file other than a run's products was written after ``moment``, or when that cannot be told.

    Blocking: call through ``asyncio.to_thread``.
    """
    since_ns = int(moment.timestamp() * 1_000_000_000)
    recent: list[str] = []
    locks: list[str] = []
    try:
        for relative, stat in _files(root):
            name = relative.rsplit("/", 1)[-1]
            if name == "dvc.lock":
                locks.append(relative)
            if name in RUN_PRODUCTS:
                continue
            if max(stat.st_mtime_ns, stat.st_ctime_ns) > since_ns:
                recent.append(relative)
    except (_TooLarge, OSError):
        return True
    if not recent:
        return False
    outputs = _outputs(root, locks)
    if outputs is None:
        return True
    return any(not _under_any(path, outputs) for path in recent)


def _files(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every file (and symlink) below ``root`` as (posix path relative to root, lstat), DVC's folder and .git aside."""
    seen = 0
    folders = [""]
    while folders:
        folder = folders.pop()
        with os.scandir(root / folder if folder else root) as entries:
            for entry in entries:
                seen += 1
                if seen > MAX_ENTRIES:
                    raise _TooLarge
                relative = f"{folder}/{entry.name}" if folder else entry.name
                if not folder and entry.name in SKIPPED_AT_ROOT:
                    continue
                if not folder and entry.name == DVC_FOLDER:
                    for setting in DVC_SETTINGS:
                        path = root / DVC_FOLDER / setting
                        if path.exists():
                            yield f"{DVC_FOLDER}/{setting}", path.lstat()
                    continue
                if entry.is_dir(follow_symlinks=False):
                    folders.append(relative)
                else:
                    yield relative, entry.stat(follow_symlinks=False)


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = yaml.load(path.read_text(), Loader=_Loader)  # a safe loader (C if available)
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else {}


def _outputs(root: Path, locks: list[str]) -> list[str] | None:
    """Outputs recorded in the dvc.lock files, relative to the root; None if one of them cannot be read."""
    outputs: list[str] = []
    for lock in locks:
        folder = PurePosixPath(lock).parent
        lock_data = _load(root / lock)
        definitions = _load(root / folder / "dvc.yaml")
        if lock_data is None or definitions is None:
            return None
        stages = definitions.get("stages") or {}
        for name, entry in (lock_data.get("stages") or {}).items():
            definition = stages.get(name) if isinstance(stages, dict) else None
            wdir = definition.get("wdir", ".") if isinstance(definition, dict) else "."
            for out in (entry.get("outs") or []) if isinstance(entry, dict) else []:
                if isinstance(out, dict) and isinstance(out.get("path"), str):
                    outputs.append(os.path.normpath(str(folder / str(wdir) / out["path"])))
    return outputs


def _under_any(path: str, outputs: list[str]) -> bool:
    return any(path == out or path.startswith(out.rstrip("/") + "/") for out in outputs)
