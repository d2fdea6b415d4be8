"""Running one DVC stage as its own process group: streamed output, measured command, stop on demand.

A stage is launched as `dvc --wait-for-lock repro --single-item [--force] TARGET`, so dvc.lock, the cache and the
run-cache end as the CLI leaves them, and independent stages of a workspace can run side by side (DVC releases its
repository lock while a command runs). DVC runs each command through ``$SHELL``: a small generated stage shell
measures it (peak RSS, CPU) and takes the group down if DVC dies.

DVC's CLI runs in a child forked from a per-worker stage server that imported DVC once (stage_server.py), instead of
paying a new interpreter's ~1 s start-up per stage. A run opens a session in it (``open_session``): a process that
read the run's stages from dvc.yaml and dvc.lock once, from which each stage is forked, so that a stage does not
reopen the workspace and parse those files again (see stage_server.py). ``start_stage_server()`` at worker start-up
spares the first stages the slow path they take while the server starts.
"""

from workers.execution.environment import stage_environment
from workers.execution.launcher import StageProcess, StageResult, launch_stage
from workers.execution.server import StageSession, open_session, start_stage_server

__all__ = [
    "StageProcess",
    "StageResult",
    "StageSession",
    "launch_stage",
    "open_session",
    "stage_environment",
    "start_stage_server",
]
