"""Running one DVC stage as its own process group: streamed output, measured command, stop on demand.

A stage is launched as `dvc --wait-for-lock repro --single-item [--force] TARGET`, so dvc.lock, the cache and the
run-cache end as the CLI leaves them, and independent stages of a workspace can run side by side (DVC releases its
repository lock while a command runs). DVC runs each command through ``$SHELL``: a small generated stage shell
measures it (peak RSS, CPU) and takes the group down if DVC dies.
"""

from workers.execution.environment import stage_environment
from workers.execution.launcher import StageProcess, StageResult, launch_stage

__all__ = ["StageProcess", "StageResult", "launch_stage", "stage_environment"]
