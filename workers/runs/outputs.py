"""Which outputs a run changed, from the dvc.lock files before and after it (no DVC needed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

OutputHashes = dict[str, str]


def _load(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def output_hashes(root: Path) -> OutputHashes:
    """Every output recorded in any dvc.lock, by path relative to the root, with its recorded hash."""
    hashes: OutputHashes = {}
    for lock in root.rglob("dvc.lock"):
        if ".dvc" in lock.relative_to(root).parts or ".git" in lock.relative_to(root).parts:
            continue
        folder = lock.parent
        definitions = _load(folder / "dvc.yaml").get("stages", {}) or {}
        for name, entry in (_load(lock).get("stages", {}) or {}).items():
            definition = definitions.get(name, {}) if isinstance(definitions, dict) else {}
            wdir = definition.get("wdir", ".") if isinstance(definition, dict) else "."
            for out in entry.get("outs", []) or []:
                relative = os.path.normpath(folder.relative_to(root) / wdir / out["path"])
                hashes[Path(relative).as_posix()] = str(out.get("md5") or out.get("etag") or out.get("hash") or "")
    return hashes


def changed_outputs(before: OutputHashes, after: OutputHashes) -> list[str]:
    return sorted(path for path, digest in after.items() if before.get(path) != digest)
