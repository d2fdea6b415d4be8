"""DVC Repos kept open between calls, with the index they built, while their workspace's fingerprint holds.

Building DVC's index (parsing every dvc.yaml and dvc.lock, validating them, building and checking the
graph) is most of what a status costs; the hashing of dependencies and outputs is cheap thanks to DVC's
state database. A worker keeps one open Repo per recently used workspace and reuses it only when the
files the index is built from are exactly as they were when it was opened, checked under DVC's
repository lock (fingerprint.py). Anything else (a run, a pipeline write, an edited dvc.lock or
.dvcignore, new config) gets a freshly opened Repo.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.domain.errors import DomainError
from workers.dvcops.changes import LockedStages
from workers.dvcops.fingerprint import Fingerprint, take_fingerprint
from workers.dvcops.repo import open_dvc_repo, open_repo
from workers.dvcops.rwlock_file import repair_locked

# Git's "racy clean" margin (see Fingerprint.settled), wide enough for file systems with 1 s timestamps.
SETTLE_SECONDS = 2.0
WORKSPACES = 8


@dataclass(slots=True)
class OpenRepo:
    """A Repo whose repository lock is held, and the dvc.lock entries read for its index."""

    repo: Any
    locked: LockedStages = field(default_factory=LockedStages)


@dataclass(slots=True)
class _Slot:
    mutex: threading.Lock = field(default_factory=threading.Lock)
    opened: OpenRepo | None = None
    # None: not to be reused (files changed too recently to trust their stats).
    fingerprint: Fingerprint | None = None

    def drop(self) -> None:
        if self.opened is not None:
            self.opened.repo.close()
        self.opened = None
        self.fingerprint = None


class WarmRepos:
    """The open Repos of one worker process. Calls for one workspace take turns; others run alongside."""

    def __init__(self, *, workspaces: int = WORKSPACES, settle_seconds: float = SETTLE_SECONDS) -> None:
        self._workspaces = workspaces
        self._settle_seconds = settle_seconds
        self._guard = threading.Lock()
        self._slots: OrderedDict[str, _Slot] = OrderedDict()

    @contextmanager
    def locked(self, root: Path) -> Iterator[OpenRepo]:
        """The workspace's Repo, its index current with the files on disk, DVC's repository lock held."""
        slot = self._slot(root)
        with slot.mutex:
            opened = self._lock_current(slot, root)
            keep = False
            try:
                yield opened
                keep = True
            except DomainError:
                keep = True  # an expected answer (unknown stage, ...): the Repo is as good as before
                raise
            finally:
                opened.repo.lock.unlock()
                if not keep or slot.fingerprint is None:
                    slot.drop()

    def forget(self, root: Path) -> None:
        """Close the workspace's Repo, if one is open (after the worker changed the workspace)."""
        with self._guard:
            slot = self._slots.pop(str(root), None)
        if slot is not None:
            with slot.mutex:
                slot.drop()

    def close(self) -> None:
        with self._guard:
            slots = list(self._slots.values())
            self._slots.clear()
        for slot in slots:
            with slot.mutex:
                slot.drop()

    def _slot(self, root: Path) -> _Slot:
        with self._guard:
            slot = self._slots.setdefault(str(root), _Slot())
            self._slots.move_to_end(str(root))
            idle = [key for key, s in list(self._slots.items())[: -self._workspaces] if not s.mutex.locked()]
            evicted = [self._slots.pop(key) for key in idle]
        for old in evicted:
            with old.mutex:
                old.drop()
        return slot

    def _lock_current(self, slot: _Slot, root: Path) -> OpenRepo:
        if slot.opened is not None:
            slot.opened.repo.lock.lock()
            try:
                # Under the lock: a DVC process writes dvc.lock only while holding it, so what the
                # fingerprint saw stays true until we release it.
                if slot.fingerprint is not None and take_fingerprint(root) == slot.fingerprint:
                    # A DVC process killed since this Repo was opened may have left the rwlock unreadable.
                    repair_locked(slot.opened.repo, project=root.name)
                    return slot.opened
            except BaseException:
                slot.opened.repo.lock.unlock()
                raise
            slot.opened.repo.lock.unlock()
            slot.drop()
        # Taken before DVC reads anything (its config, when opening): a file changing after this makes
        # the next fingerprint differ, so this Repo is not reused after such a change.
        fingerprint = take_fingerprint(root)
        repo = open_dvc_repo(root)
        try:
            repo.lock.lock()
        except BaseException:
            repo.close()
            raise
        slot.opened = OpenRepo(repo)
        slot.fingerprint = fingerprint if fingerprint.settled(self._settle_seconds) else None
        return slot.opened


@contextmanager
def locked_repo(root: Path, repos: WarmRepos | None) -> Iterator[OpenRepo]:
    """From ``repos`` when given; otherwise a Repo opened for this call only."""
    if repos is not None:
        with repos.locked(root) as opened:
            yield opened
        return
    with open_repo(root) as repo, repo.lock:
        yield OpenRepo(repo)
