"""Mapping a DVC dependency or output back to the StageSpec field it came from."""

from __future__ import annotations

import os

from app.domain.pipelines import StageSpec
from workers.dvcops.codec import split_param

DEP_FIELDS = ("deps", "params")
OUT_FIELDS = ("outs", "metrics", "plots")


def locations(root_dir: str, spec: StageSpec, fs_path: str, fields: tuple[str, ...]) -> list[str]:
    """Every ``field[position]`` of ``spec`` whose path is ``fs_path`` (an absolute path, as DVC's)."""
    target = os.path.abspath(fs_path)
    found: list[str] = []
    for field in fields:
        entries = [split_param(e)[0] for e in spec.params] if field == "params" else getattr(spec, field)
        for position, entry in enumerate(entries):
            if os.path.abspath(os.path.join(root_dir, spec.wdir, entry)) == target:
                found.append(f"{field}[{position}]")
    return found


def locate(
    root_dir: str, index: int, spec: StageSpec, fs_path: str, fields: tuple[str, ...], *, last: bool = False
) -> str:
    """``stages[i].field[j]`` for the (first or last) entry at ``fs_path``, else ``stages[i]``."""
    found = locations(root_dir, spec, fs_path, fields)
    if not found:
        return f"stages[{index}]"
    return f"stages[{index}].{found[-1] if last else found[0]}"
