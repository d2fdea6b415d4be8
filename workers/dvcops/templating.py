"""Which DVC templating constructs a dvc.yaml uses: what a stage-by-stage rewrite would expand away.

The API's stage edits write each stage as DVC resolved it (``foreach``/``matrix`` expanded into
``name@key`` stages, every ``${...}`` replaced by its value). That is lossless only for a file without
templates, so an edit of a templated file is refused with the constructs found here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workers.dvcops.writing import load_for_update

TEMPLATE_MARK = "${"
GENERATORS = ("foreach", "matrix")


def templating_constructs(file: Path) -> list[str]:
    """Each construct that a rewrite of the stages would lose, located (empty: safe to rewrite stage by stage).

    ``vars`` alone is kept by a rewrite (other top-level keys survive it) and only matters where a
    stage interpolates, so it is reported only together with an interpolation.
    """
    data = load_for_update(file)
    stages = data.get("stages")
    found: list[str] = []
    if isinstance(stages, dict):
        for name, definition in stages.items():
            if not isinstance(definition, dict):
                continue
            found.extend(f"{keyword} in stage '{name}'" for keyword in GENERATORS if keyword in definition)
            do = definition.get("do")
            body: dict[str, Any] = do if isinstance(do, dict) else definition
            fields = [key for key, value in body.items() if key not in GENERATORS and _interpolates(value)]
            if fields:
                found.append(f"${{...}} in stage '{name}' ({', '.join(str(key) for key in fields)})")
    if found and "vars" in data:
        found.insert(0, "vars (top level)")
    return found


def _interpolates(value: Any) -> bool:
    if isinstance(value, str):
        return TEMPLATE_MARK in value
    if isinstance(value, dict):
        return any(_interpolates(k) or _interpolates(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_interpolates(item) for item in value)
    return False
