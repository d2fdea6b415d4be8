"""DVC's own dvc.yaml schema (dvc/schema.py) applied to each proposed stage."""

from __future__ import annotations

from typing import Any

from app.domain.errors import Issue
from workers.dvcops import dvc_internals

# dvc.yaml keys whose StageSpec field has another name.
SPEC_FIELDS = {"desc": "description"}


def schema_issues(index: int, name: str, data: dict[str, Any]) -> list[Issue]:
    """What DVC's schema rejects in the dvc.yaml entry ``data`` of ``stages[index]``."""
    import voluptuous as vol

    try:
        dvc_internals.validate_stage_data({"stages": {name: data}})
    except vol.MultipleInvalid as exc:
        return [
            Issue(
                path=_field_path(index, list(error.path)),
                message=f"DVC rejects this: {error.msg}",
                stage=name,
            )
            for error in exc.errors
        ]
    return []


def _field_path(index: int, error_path: list[Any]) -> str:
    # error_path is ['stages', <name>, <key>, <position>, ...] as voluptuous reports it.
    path = f"stages[{index}]"
    rest = error_path[2:]
    if rest:
        path += f".{SPEC_FIELDS.get(str(rest[0]), str(rest[0]))}"
        # params are regrouped by file when written, so a position there does not map back.
        if len(rest) > 1 and isinstance(rest[1], int) and rest[0] != "params":
            path += f"[{rest[1]}]"
    return path
