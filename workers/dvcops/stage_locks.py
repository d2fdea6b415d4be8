"""One DVC read lock over the dependencies and outputs of many stages, and Stage.status under it.

DVC's Stage.status takes its read lock (``rwlocked``: a JSON file under .dvc/tmp, edited under a
file lock) itself, twice per stage; for a long pipeline that is most of what a status costs once the
index is built. Taking the same lock once for every stage read keeps its meaning (a `dvc repro`
writing one of those outputs still makes the read fail with LockError, and a repro waits for it).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def reading_stages(repo: Any, stages: Iterable[Any]) -> Iterator[None]:
    """Hold DVC's read lock on the dependencies and outputs of ``stages`` (DVC's repository lock held)."""
    from dvc.rwlock import rwlock

    assert repo.lock.is_locked
    paths = list(dict.fromkeys(path for stage in stages for path in _locked_paths(stage)))
    hardlink = repo.config["core"].get("hardlink_lock", False)
    with rwlock(repo.tmp_dir, repo.fs, " ".join(sys.argv), paths, [], hardlink):
        yield


def stage_status(stage: Any) -> dict[str, list[Any]]:
    """Stage.status() without its own read lock: call it inside ``reading_stages``."""
    status: dict[str, list[Any]] = inspect.unwrap(type(stage).status)(stage)
    return status


def _locked_paths(stage: Any) -> Iterator[str]:
    # As DVC's rwlocked(read=["deps", "outs"]): no lock for dependencies on other repositories or databases.
    from dvc.dependency.db import AbstractDependency
    from dvc.dependency.repo import RepoDependency

    for item in [*stage.deps, *stage.outs]:
        if not isinstance(item, (RepoDependency, AbstractDependency)):
            yield item.fs_path
