"""Parameter overrides applied as ``dvc exp run -S file:key=value`` applies them.

``dvc.utils.hydra.apply_overrides`` (called through workers/dvcops/dvc_internals.py) is the function DVC's
experiment queue calls for ``-S`` (dvc/repo/experiments/queue/base.py): it parses each override with Hydra's grammar
(``0.1`` a float, ``[1,2]`` a list, ``abc`` a string), refuses a key the file does not have (Hydra's struct mode;
``+key=`` adds one, as with DVC), and writes the file back with DVC's own serializer for its format (YAML, JSON,
TOML, Python).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from app.domain.errors import InvalidInput, Issue, WorkspaceError
from app.domain.experiments import ParamOverride, overrides_by_file
from workers import gitops
from workers.dvcops import dvc_internals


def params_file(root: Path, file: str) -> Path:
    """``file`` of the copy (or workspace) ``root``; InvalidInput when it is not a file inside it."""
    path = root / file
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if os.path.commonpath([real_root, real]) != real_root:
        raise InvalidInput([Issue(path="setParams.file", message=f"{file!r} leads outside the workspace")])
    if not os.path.isfile(real):
        raise InvalidInput([Issue(path="setParams.file", message=f"there is no params file {file!r}")])
    return path


def apply(root: Path, overrides: list[ParamOverride]) -> None:
    """Edit the params files of ``root``; InvalidInput naming the file when DVC refuses an override."""
    from dvc.exceptions import InvalidArgumentError

    for file, items in overrides_by_file(overrides).items():
        path = params_file(root, file)
        try:
            dvc_internals.apply_param_overrides(path, items)
        except InvalidArgumentError as refused:
            cause = str(refused.__cause__ or "").strip().splitlines()
            detail = f": {cause[0]}" if cause else ""
            raise InvalidInput(
                [Issue(path="setParams", message=f"DVC refused {', '.join(items)} for {file}{detail}")]
            ) from refused


def check(workspace: Path, base_sha: str, base_rev: str | None, overrides: list[ParamOverride]) -> None:
    """Whether DVC would apply the overrides to the base's params files, tried on copies of those files."""
    with tempfile.TemporaryDirectory(prefix="experiment-check-") as scratch:
        root = Path(scratch)
        for file in overrides_by_file(overrides):
            target = root / file
            target.parent.mkdir(parents=True, exist_ok=True)
            if base_rev is None:
                shutil.copyfile(params_file(workspace, file), target)
                continue
            try:
                content = gitops.git(workspace, "cat-file", "blob", f"{base_sha}:{file}")
            except WorkspaceError:
                raise InvalidInput(
                    [Issue(path="setParams.file", message=f"{base_rev} has no params file {file!r}")]
                ) from None
            target.write_text(content, encoding="utf-8")
        apply(root, overrides)
