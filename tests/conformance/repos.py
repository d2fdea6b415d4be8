"""A repository shape: the files of a small DVC project, made into a git repository a project can clone."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.conformance.oracle import Oracle

GIT_IDENTITY = ["-c", "user.name=conformance", "-c", "user.email=conformance@example.com"]


@dataclass(frozen=True)
class Variation:
    """Edit files through the API, then run with these options; `dvc repro` gets the same flags on a copy."""

    name: str
    options: dict[str, Any]
    """ExecuteInput fields: targets, downstream, force, singleItem."""
    edits: dict[str, str] = field(default_factory=dict)
    pipeline: str | None = None
    """The dvc.yaml to run (default: the shape's main one)."""


@dataclass(frozen=True)
class Shape:
    name: str
    files: dict[str, Any]
    """Path -> text, or a dict/list written as YAML (dvc.yaml files, params)."""
    main: str = "dvc.yaml"
    """The pipeline the runs execute."""
    tracked: tuple[str, ...] = ()
    """Files `dvc add`ed before the commit. A clone has no DVC cache, so they are written again through
    the API after cloning, with the same bytes."""
    variations: tuple[Variation, ...] = ()
    run_options: dict[str, Any] = field(default_factory=dict)
    """The options of the first run and its rerun."""
    reproduced: bool = False
    """`dvc repro` ran before the commit: dvc.lock and every output not in DVC's cache (cache: false) are in git."""
    after_repro: dict[str, Any] = field(default_factory=dict)
    """Files written after that repro, before the commit (a stage frozen once it has run, say)."""


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return yaml.safe_dump(content, sort_keys=False)


def build_repository(shape: Shape, source: Path, oracle: Oracle) -> Path:
    """git init + dvc init + the shape's files (+ dvc add) + one commit, in ``source``."""
    source.mkdir(parents=True)
    subprocess.run(["git", "init", "--quiet"], cwd=source, check=True)
    oracle.init(source)
    for path, content in shape.files.items():
        target = source / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text_of(content))
    for path in shape.tracked:
        oracle.add(source, path)
    if shape.reproduced:
        error = oracle.repro(source, targets=[])["error"]
        assert error is None, error
    for path, content in shape.after_repro.items():
        (source / path).write_text(text_of(content))
    subprocess.run(["git", "add", "--all"], cwd=source, check=True)
    subprocess.run(["git", *GIT_IDENTITY, "commit", "--quiet", "-m", shape.name], cwd=source, check=True)
    return source
