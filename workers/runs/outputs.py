"""Which outputs a run changed, from the dvc.lock files before and after it (no DVC needed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

OutputHashes = dict[str, str]
SKIPPED_FOLDERS = frozenset({".git", ".dvc"})


def _load(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def output_hashes(root: Path) -> OutputHashes:
    """Every output recorded in any dvc.lock, by path relative to the root, with its recorded hash."""
    hashes: OutputHashes = {}
    for lock in _lock_files(root):
        folder = lock.parent
        definitions = _load(folder / "dvc.yaml").get("stages", {}) or {}
        for name, entry in (_load(lock).get("stages", {}) or {}).items():
            definition = definitions.get(name, {}) if isinstance(definitions, dict) else {}
            wdir = definition.get("wdir", ".") if isinstance(definition, dict) else "."
            for out in entry.get("outs", []) or []:
                relative = os.path.normpath(folder.relative_to(root) / wdir / out["path"])
                hashes[Path(relative).as_posix()] = str(out.get("md5") or out.get("etag") or out.get("hash") or "")
    return hashes


def _lock_files(root: Path) -> list[Path]:
    """dvc.lock files of the workspace, without walking .git or .dvc (whose cache grows with every run's outputs)."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if name not in SKIPPED_FOLDERS]
        if "dvc.lock" in files:
            found.append(Path(folder) / "dvc.lock")
    return found


def changed_outputs(before: OutputHashes, after: OutputHashes) -> list[str]:
    return sorted(path for path, digest in after.items() if before.get(path) != digest)
