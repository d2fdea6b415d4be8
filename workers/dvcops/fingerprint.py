"""What DVC's index of a workspace is built from, as file stats: equal fingerprints, equal index.

DVC builds its index (stages, their lock entries, the graph) from every dvc.yaml, dvc.lock and .dvc
file it finds walking the workspace, skipping what .dvcignore and git ignore, with settings from
.dvc/config. Those files, wherever they are, make up the fingerprint. A dvc.yaml with ``${...}``
interpolation also reads values files (``vars``, params.yaml) that may be anywhere, so then every
file of the workspace is part of it. Dependencies and outputs are not: DVC hashes them on every
status (through its state database), whatever index it uses.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from workers.dvcops.paths import LOCK_FILE, PIPELINE_FILE

INDEX_FILES = frozenset({PIPELINE_FILE, LOCK_FILE, ".dvcignore", ".gitignore"})
SETTINGS_FILES = (".dvc/config", ".dvc/config.local", ".git/info/exclude")
SKIPPED_DIRS = frozenset({".git", ".dvc"})
TEMPLATE_MARK = b"${"

# (path relative to the root, inode, size, mtime_ns, ctime_ns)
FileStat = tuple[str, int, int, int, int]


@dataclass(frozen=True, slots=True)
class Fingerprint:
    files: frozenset[FileStat]
    taken_ns: int

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fingerprint) and self.files == other.files

    def __hash__(self) -> int:
        return hash(self.files)

    def settled(self, margin_seconds: float) -> bool:
        """No file changed within ``margin_seconds`` before the fingerprint was taken.

        A file rewritten in place twice within one tick of the file system's clock, at the same size,
        keeps its stat. Trusting a fingerprint only when its files are older than the margin (git's
        "racy clean" rule) means any later write moves their times forward, so it is always seen.
        """
        limit = self.taken_ns - int(margin_seconds * 1e9)
        return all(mtime < limit and ctime < limit for _, _, _, mtime, ctime in self.files)


def take_fingerprint(root: Path) -> Fingerprint:
    taken_ns = time.time_ns()
    index_files: list[str] = []
    all_files: list[str] = []
    templated = False
    for folder, dirs, names in os.walk(root):
        if folder == str(root):
            dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS]
        for name in names:
            path = os.path.join(folder, name)
            all_files.append(path)
            if name in INDEX_FILES or name.endswith(".dvc"):
                index_files.append(path)
                templated = templated or (name == PIPELINE_FILE and _has_template(path))
    settings = [str(root / name) for name in SETTINGS_FILES]
    files = [*(all_files if templated else index_files), *settings]
    return Fingerprint(frozenset(filter(None, (_stat(root, path) for path in files))), taken_ns)


def _has_template(path: str) -> bool:
    try:
        with open(path, "rb") as file:
            return TEMPLATE_MARK in file.read()
    except OSError:
        return True  # unreadable now: DVC may read it later, so assume the worst


def _stat(root: Path, path: str) -> FileStat | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # absent (a settings file that does not exist, or a file removed meanwhile)
    return (os.path.relpath(path, root), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
