"""An experiment published on Redis (app.events.experiments) decodes to the very experiment that was stored."""

from __future__ import annotations

from datetime import UTC, datetime

from bson import ObjectId

from app.domain.experiments import Experiment, ExperimentSource, ExperimentState, ParamOverride
from app.domain.results import ResultEntry, ResultsSnapshot
from app.events.experiments import decode_experiment, encode_experiment
from app.services.experiment_updates import progress


def test_a_published_experiment_decodes_to_the_stored_one_dates_aware() -> None:
    snapshot = ResultsSnapshot(params=[ResultEntry(file="params.yaml", key="train.lr", value_json="0.1", number=0.1)])
    experiment = Experiment(
        id=str(ObjectId()),
        project_id="p",
        pipeline_id="q",
        pipeline_name="exp",
        name="lr-high",
        base_rev=None,
        set_params=[ParamOverride(file="params.yaml", key="train.lr", value="0.1")],
        state=ExperimentState.RUNNING,
        run_id=None,
        created_by="u",
        created_at=datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=UTC),
        started_at=datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC),
        baseline=snapshot,
        source=ExperimentSource.DVC,
        results=snapshot,
    )

    decoded = decode_experiment(encode_experiment(experiment))

    assert decoded == experiment
    assert decoded.created_at.tzinfo is not None


def test_states_progress_in_the_order_an_experiment_enters_them() -> None:
    ranks = [progress(s) for s in (ExperimentState.QUEUED, ExperimentState.RUNNING, ExperimentState.SUCCEEDED)]
    assert ranks == sorted(ranks) and len(set(ranks)) == 3
    finals = {ExperimentState.FAILED, ExperimentState.CANCELLED, ExperimentState.TIMED_OUT, ExperimentState.SUCCEEDED}
    assert {progress(s) for s in finals} == {progress(ExperimentState.SUCCEEDED)}
