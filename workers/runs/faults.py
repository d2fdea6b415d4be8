"""Test-only fault injection into runs, off unless the worker's environment sets ``RUN_FAULTS``.

``RUN_FAULTS="<pipeline name>=<step>,..."`` makes every run of that pipeline raise ``InjectedFault`` at that step,
so tests can check that a run reaches a final state whatever fails (tests/runs_final/). Steps, in a run's order:

- ``plan``: while DVC plans the run
- ``session``: while the stage session opens
- ``before_first_stage``: the plan is recorded, no stage started
- ``between_stages``: a stage was started, the next is about to be
- ``recording``: storing an event of a stage that succeeded (the recorder's store failing)
- ``end``: the stages are over, the outputs are about to be read
- ``final_event``: storing the run's final event (its final state is stored already)

Read once, when the worker starts; nothing else reads or changes it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

FAULTS_ENV = "RUN_FAULTS"
STEPS = frozenset({"plan", "session", "before_first_stage", "between_stages", "recording", "end", "final_event"})


class InjectedFault(RuntimeError):
    """Raised where RUN_FAULTS asked for it."""


def parse(env: Mapping[str, str]) -> dict[str, str]:
    faults: dict[str, str] = {}
    for entry in filter(None, (e.strip() for e in env.get(FAULTS_ENV, "").split(","))):
        pipeline, _, step = entry.partition("=")
        if step not in STEPS:
            raise ValueError(f"{FAULTS_ENV}: unknown step {step!r} in {entry!r} (steps: {', '.join(sorted(STEPS))})")
        faults[pipeline] = step
    return faults


_FAULTS = parse(os.environ)


def inject(pipeline_name: str, step: str) -> None:
    if _FAULTS and _FAULTS.get(pipeline_name) == step:
        raise InjectedFault(f"injected fault at step {step!r} (RUN_FAULTS)")
