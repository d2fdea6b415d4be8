"""One DVC read lock over the dependencies and outputs of many stages, and Stage.status under it.

DVC's Stage.status takes its read lock (``rwlocked``: a JSON file under .dvc/tmp, edited under a
file lock) itself, twice per stage; for a long pipeline that is most of what a status costs once the
index is built. Taking the same lock once for every stage read keeps its meaning (a `dvc repro`
writing one of those outputs still makes the read fail with LockError, and a repro waits for it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from workers.dvcops import dvc_internals


@contextmanager
def reading_stages(repo: Any, stages: Iterable[Any]) -> Iterator[None]:
    """Hold DVC's read lock on the dependencies and outputs of ``stages`` (DVC's repository lock held)."""
    assert repo.lock.is_locked
    paths = list(dict.fromkeys(path for stage in stages for path in _locked_paths(stage)))
    hardlink = repo.config["core"].get("hardlink_lock", False)
    with dvc_internals.stage_read_lock(repo, paths, hardlink=hardlink):
        yield


def stage_status(stage: Any) -> dict[str, list[Any]]:
    """Stage.status() without its own read lock: call it inside ``reading_stages``."""
    return dvc_internals.status_without_lock(stage)


def _locked_paths(stage: Any) -> Iterator[str]:
    # As DVC's rwlocked(read=["deps", "outs"]): no lock for dependencies on other repositories or databases.
    for item in [*stage.deps, *stage.outs]:
        if not dvc_internals.is_external_dependency(item):
            yield item.fs_path
