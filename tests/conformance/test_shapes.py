"""Each repository shape, held to DVC: listing, validation, status, plan, runs and run options.

For every shape of the corpus (tests/conformance/shapes.py) the service clones the repository and DVC works on
copies of the service's workspace taken at the same moments (see scenario.py). Every test below reads one
check of the shape's one exercise; a failure shows the service's and DVC's values side by side.
"""

from __future__ import annotations

import pytest

from tests.conformance.conftest import SHAPES_BY_NAME, Reports

ALL = sorted(SHAPES_BY_NAME)
WITH_VARIATIONS = sorted(name for name, make in SHAPES_BY_NAME.items() if make().variations)


async def assert_check(reports: Reports, shape: str, check: str) -> None:
    outcome = (await reports.of(shape)).outcome(check)
    if outcome is not None:
        pytest.fail(outcome, pytrace=False)


@pytest.mark.parametrize("shape", ALL)
async def test_the_stages_listed_are_the_stages_dvc_lists(reports: Reports, shape: str) -> None:
    await assert_check(reports, shape, "listing")


@pytest.mark.parametrize("shape", ALL)
async def test_a_repository_dvc_accepts_validates(reports: Reports, shape: str) -> None:
    await assert_check(reports, shape, "validation")


@pytest.mark.parametrize("shape", ALL)
async def test_the_dag_has_the_edges_of_dvcs_graph(reports: Reports, shape: str) -> None:
    await assert_check(reports, shape, "dag")


@pytest.mark.parametrize("shape", ALL)
async def test_status_agrees_with_dvc_status(reports: Reports, shape: str) -> None:
    await assert_check(reports, shape, "status")


@pytest.mark.parametrize("shape", ALL)
async def test_every_stage_a_run_executes_is_in_the_dry_run_plan(reports: Reports, shape: str) -> None:
    await assert_check(reports, shape, "plan")


@pytest.mark.parametrize("shape", ALL)
async def test_a_run_leaves_what_dvc_repro_leaves(reports: Reports, shape: str) -> None:
    await assert_check(reports, shape, "run")


@pytest.mark.parametrize("shape", ALL)
async def test_a_second_run_skips_what_dvc_repro_skips(reports: Reports, shape: str) -> None:
    await assert_check(reports, shape, "rerun")


@pytest.mark.parametrize("shape", WITH_VARIATIONS)
async def test_targets_downstream_force_and_single_item_match_dvc_repro(reports: Reports, shape: str) -> None:
    await assert_check(reports, shape, "options")
