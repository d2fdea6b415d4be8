"""Redis channel names; one place so the API and the workers agree."""

from __future__ import annotations


def run_events(run_id: str) -> str:
    return f"run-events:{run_id}"


def pipeline_runs(pipeline_id: str) -> str:
    return f"pipeline-runs:{pipeline_id}"


def project_runs(project_id: str) -> str:
    return f"project-runs:{project_id}"


def run_recent(run_id: str) -> str:
    """Not a channel: the Redis list of a run's recent event messages (app.events.recent)."""
    return f"run-recent:{run_id}"


def pipeline_experiments(pipeline_id: str) -> str:
    """Each state an experiment of the pipeline enters, as the document after the write (app.events.experiments)."""
    return f"pipeline-experiments:{pipeline_id}"


def sweep_experiments(sweep_id: str) -> str:
    return f"sweep-experiments:{sweep_id}"
