"""JSON encoding of run events for Redis."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from app.domain.runs import RunEvent


def encode_event(event: RunEvent) -> str:
    data = event.to_dict()
    data["at"] = event.at.isoformat()
    return json.dumps(data)


def decode_event(raw: str | bytes) -> RunEvent:
    data: dict[str, Any] = json.loads(raw)
    data["at"] = datetime.fromisoformat(data["at"])
    return RunEvent.from_dict(data)


def encode_run_notice(run_id: str, state: str) -> str:
    return json.dumps({"run_id": run_id, "state": state})


def decode_run_notice(raw: str | bytes) -> str:
    run_id: str = json.loads(raw)["run_id"]
    return run_id
