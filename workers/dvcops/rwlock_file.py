"""Repairing DVC's `.dvc/tmp/rwlock` when a killed DVC process left it empty or half written.

DVC rewrites that JSON file in place (dvc/rwlock.py ``_edit_rwlock``: ``open(path, "w")`` then ``json.dump``) several
times per stage. A process killed between the truncation and the end of the dump leaves it empty or truncated, and
from then on every DVC operation that reads it fails with RWLockFileCorruptedError (RWLockFileFormatError for valid
JSON of another shape) until someone deletes it by hand: the workspace is bricked.

Every edit DVC makes to that file happens with DVC's repository lock (`.dvc/tmp/lock`) held (``rwlocked`` asserts
``stage.repo.lock.is_locked``; so does stage_locks.reading_stages) and under the file's own guard
(`.dvc/tmp/rwlock.lock`). The repair takes both, in DVC's order, checks the file again and only then replaces it,
atomically, with DVC's "no locks" content. A file that cannot be parsed holds no lock DVC could honour, so nothing
usable is dropped; what it held is logged. When the repository lock cannot be taken, a live DVC process owns the
workspace and the file is left alone.

The DVC internals it needs (the file's name, its schema, its guard) come from workers.dvcops.dvc_internals; with a
DVC version they were not checked against, the repair does nothing but say so.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from workers.dvcops import dvc_internals
from workers.dvcops.atomic import write_atomically

logger = logging.getLogger(__name__)

NO_LOCKS = "{}"
"""What DVC writes once every lock is released (``_release_read``/``_release_write`` drop the emptied keys)."""
SHOWN_BYTES = 200


def rwlock_path(repo: Any) -> Path:
    return Path(repo.tmp_dir, dvc_internals.rwlock_file_name())


def rwlock_problem(path: Path) -> str | None:
    """Why DVC would refuse the rwlock file at ``path`` (as dvc/rwlock.py reads it); None when it would not."""
    from voluptuous import Invalid

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None  # DVC reads a missing file as no locks
    except UnicodeDecodeError:
        return "not UTF-8 text"
    if not text.strip():
        return "empty"
    try:
        dvc_internals.check_rwlock_shape(json.loads(text))
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg} at byte {exc.pos} of {len(text)})"
    except Invalid as exc:
        return f"not DVC's rwlock shape ({exc})"
    return None


def repair_if_broken(repo: Any, project: str) -> bool:
    """Replace a broken rwlock file of ``repo``'s workspace, taking DVC's repository lock; True when it did.

    A valid (or missing) file is only read, without any lock. A broken one is checked again, and replaced, with the
    repository lock held; when that lock cannot be taken (DVC's own 3 s of retries), a live DVC process holds it
    and the file is left as it is.
    """
    from dvc.lock import LockError

    if rwlock_problem(rwlock_path(repo)) is None:
        return False
    try:
        repo.lock.lock()
    except LockError:
        logger.warning(
            "project %s: %s is unreadable but DVC's repository lock is held by a live process; left as it is",
            project,
            rwlock_path(repo),
        )
        return False
    try:
        return repair_locked(repo, project)
    finally:
        repo.lock.unlock()


def repair_locked(repo: Any, project: str) -> bool:
    """As repair_if_broken, for a caller that holds ``repo``'s repository lock already."""
    assert repo.lock.is_locked
    path = rwlock_path(repo)
    if rwlock_problem(path) is None:
        return False
    if not dvc_internals.checked():
        logger.warning(
            "project %s: %s is unreadable; not repaired: DVC %s is not the version %s.x this repair was checked with",
            project,
            path,
            dvc_internals.dvc_version(),
            dvc_internals.CHECKED_DVC_MAJOR,
        )
        return False
    guard = dvc_internals.rwlock_guard(path, hardlink_lock=repo.config["core"].get("hardlink_lock", False))
    with guard:
        problem = rwlock_problem(path)
        if problem is None:
            return False
        held = path.read_bytes()[:SHOWN_BYTES]
        write_atomically(path, NO_LOCKS)  # a kill now leaves the old file or the new one
    logger.warning(
        "project %s: DVC's %s was %s (a DVC process killed while rewriting it); replaced with DVC's empty lock. "
        "It held: %r",
        project,
        path,
        problem,
        held,
    )
    return True
