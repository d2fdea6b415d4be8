"""Running one DVC stage as its own process group: streamed output, measured command, stop on demand.

One way to launch a stage: a per-worker stage server imports DVC once (server.py starts it, stage_server.py is it);
a run opens a session in it (``open_session``), a process forked from the server with the workspace's DVC Repo open;
each stage of the run is forked from the session and reproduced there as `dvc repro --single-item [--force] TARGET`
with DVC's ``Repo.reproduce`` (``launch_stage``), so dvc.lock, the cache and the run-cache end as the CLI leaves them,
and independent stages of a workspace run side by side (DVC releases its repository lock while a command runs). The
DVC internals this needs are in workers/dvcops/dvc_internals.py.

DVC runs each command through ``$SHELL``: the stage shell (stage_shell.c, built by shell.py) measures it (peak RSS,
CPU), runs it behind ``STAGE_SANDBOX_ARGV`` when set, and takes the group down if DVC dies. groups.py signals a
stage's group, output.py streams its output, environment.py is the clean environment commands get.
"""

from workers.execution.environment import stage_environment
from workers.execution.launcher import StageProcess, StageResult, launch_stage
from workers.execution.server import StageServerError, StageSession, open_session, start_stage_server

__all__ = [
    "StageProcess",
    "StageResult",
    "StageServerError",
    "StageSession",
    "launch_stage",
    "open_session",
    "stage_environment",
    "start_stage_server",
]
