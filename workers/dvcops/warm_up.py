"""Warming a fresh worker process: DVC's imports and first-use set-up paid at start-up, not by the first request."""

from __future__ import annotations

import tempfile
from pathlib import Path

from workers.dvcops.validation import discover_checked_pipelines
from workers.dvcops.workspace import init_workspace


def warm_up() -> None:
    """Create, read and check a throwaway workspace (about 0.5 s idle, several times that on a loaded machine,
    which a fresh worker's first createProject otherwise pays)."""
    with tempfile.TemporaryDirectory(prefix="dvc-warm-up-") as scratch:
        root = Path(scratch) / "workspace"
        init_workspace(root, None)
        (root / "dvc.yaml").write_text("stages:\n  warm:\n    cmd: 'true'\n")
        discover_checked_pipelines(root)
