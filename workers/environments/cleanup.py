"""Removing the environments nobody needs any more, so PROJECT_ENVIRONMENTS_ROOT does not grow for ever.

An environment is removed when all of these hold:
- it is not the current environment of any project (the one its requirements file, as it is now, gives) nor the
  plain one: the next run of a project never rebuilds what it had;
- it was neither built nor used by a run for ENVIRONMENT_RETENTION_DAYS (a run marks its use: ``in_use``);
- no run is using it now, in any worker process sharing the folder: a run holds a shared lock on the
  environment's use file (``.locks/<name>.use``) from before its environment step until its last stage ends, and
  the cleanup removes only what it can lock exclusively (and whose build lock is free), without waiting.

A removed environment is first renamed (``.removing-<name>-...``, atomic), then deleted: a run that starts right
after finds it missing and builds it again, as its environment step does for any environment not built.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from workers.environments.store import BUILDING_PREFIX, LOCKS_FOLDER, EnvironmentStore, PythonEnvironment

logger = logging.getLogger(__name__)

USE_SUFFIX = ".use"
REMOVING_PREFIX = ".removing-"
DAY_SECONDS = 24 * 3600


def use_file(store: EnvironmentStore, name: str) -> Path:
    return store.root / LOCKS_FOLDER / f"{name}{USE_SUFFIX}"


@contextlib.contextmanager
def in_use(store: EnvironmentStore, environment: PythonEnvironment) -> Iterator[None]:
    """Hold the environment against the cleanup while a run uses it, and mark the use (the use file's time).
    Blocking but quick: the cleanup never holds its exclusive lock for longer than a rename."""
    (store.root / LOCKS_FOLDER).mkdir(parents=True, exist_ok=True)
    fd = os.open(use_file(store, environment.root.name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        os.utime(fd)
        yield
    finally:
        os.close(fd)  # releases the lock


def last_used(store: EnvironmentStore, folder: Path) -> float:
    """When the environment was last built or used (its folder's or its use file's time)."""
    times = [folder.stat().st_mtime]
    with contextlib.suppress(FileNotFoundError):
        times.append(use_file(store, folder.name).stat().st_mtime)
    return max(times)


def remove_unused(
    store: EnvironmentStore, keep: Iterable[str], *, retention_seconds: float, now: float | None = None
) -> list[str]:
    """Remove every environment of ``store`` not named in ``keep``, unused for ``retention_seconds`` and not in use;
    the names removed. Also finishes removals a stopped worker left (``.removing-*``). Blocking."""
    now = time.time() if now is None else now
    kept = set(keep)
    if not store.root.is_dir():
        return []
    for leftover in store.root.glob(f"{REMOVING_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    removed: list[str] = []
    for folder in sorted(store.root.iterdir()):
        name = folder.name
        if name.startswith(".") or name.startswith(BUILDING_PREFIX) or name in kept or not folder.is_dir():
            continue
        try:
            if now - last_used(store, folder) < retention_seconds:
                continue
        except FileNotFoundError:
            continue
        if _remove_unless_in_use(store, folder):
            removed.append(name)
    return removed


def _remove_unless_in_use(store: EnvironmentStore, folder: Path) -> bool:
    name = folder.name
    locks = store.root / LOCKS_FOLDER
    locks.mkdir(parents=True, exist_ok=True)
    use = os.open(use_file(store, name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    build = os.open(locks / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(use, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(build, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a run uses it, or builds it: kept
        doomed = store.root / f"{REMOVING_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(folder, doomed)
        except FileNotFoundError:
            return False
    finally:
        os.close(build)
        os.close(use)
    shutil.rmtree(doomed, ignore_errors=True)
    logger.info("removed the Python environment %s: no project needs it and no run used it lately", name)
    return True
