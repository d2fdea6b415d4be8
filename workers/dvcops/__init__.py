"""Synchronous DVC operations on one workspace (a git repository with DVC on disk).

Every function opens the workspace with DVC's Python API and closes it before returning; callers
serialise calls per workspace (the arq jobs hold a per-workspace lock and use ``asyncio.to_thread``).
"""

import os

# Before dvc is imported anywhere through this package: no usage analytics from the workers.
os.environ["DVC_NO_ANALYTICS"] = "1"

from workers.dvcops.dag import pipeline_dag
from workers.dvcops.plan import dry_run_plan
from workers.dvcops.reading import discover_pipelines, read_pipeline
from workers.dvcops.replacing import params_path_problem, require_text_accepted, write_texts
from workers.dvcops.status import pipeline_status
from workers.dvcops.templating import templating_constructs
from workers.dvcops.validation import check_pipeline, check_pipeline_file, discover_checked_pipelines
from workers.dvcops.warm import WarmRepos
from workers.dvcops.warm_up import warm_up
from workers.dvcops.workspace import init_workspace
from workers.dvcops.writing import prune_lock_entries, remove_pipeline, write_pipeline

__all__ = [
    "WarmRepos",
    "check_pipeline",
    "check_pipeline_file",
    "discover_checked_pipelines",
    "discover_pipelines",
    "dry_run_plan",
    "init_workspace",
    "params_path_problem",
    "pipeline_dag",
    "pipeline_status",
    "prune_lock_entries",
    "read_pipeline",
    "remove_pipeline",
    "require_text_accepted",
    "templating_constructs",
    "warm_up",
    "write_pipeline",
    "write_texts",
]
