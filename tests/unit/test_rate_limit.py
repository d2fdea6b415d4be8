"""Pure logic: the sliding one-minute window of the per-token rate limit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.services.rate_limit import WINDOW_SECONDS, seconds_until_allowed


def test_requests_up_to_the_limit_pass_and_the_next_is_refused() -> None:
    assert seconds_until_allowed(previous=0, current=1, elapsed=0.5, limit=2) is None
    assert seconds_until_allowed(previous=0, current=2, elapsed=0.5, limit=2) is None
    assert seconds_until_allowed(previous=0, current=3, elapsed=0.5, limit=2) is not None


def test_a_new_minute_does_not_hand_out_a_fresh_limit() -> None:
    """Two requests at the end of one minute and one at the start of the next: the third is still refused."""
    wait = seconds_until_allowed(previous=2, current=1, elapsed=0.01, limit=2)
    assert wait == pytest.approx(0.99 * WINDOW_SECONDS)


def test_the_previous_minute_weighs_less_as_it_slides_out() -> None:
    assert seconds_until_allowed(previous=2, current=1, elapsed=0.6, limit=2) is None


@given(
    previous=st.integers(0, 50),
    current=st.integers(1, 50),
    elapsed=st.floats(0, 0.999),
    limit=st.integers(1, 40),
)
def test_the_wait_is_exactly_until_one_more_request_fits(
    previous: int, current: int, elapsed: float, limit: int
) -> None:
    wait = seconds_until_allowed(previous=previous, current=current, elapsed=elapsed, limit=limit)
    if wait is None:
        assert previous * (1 - elapsed) + current <= limit
        return
    assert wait > 0
    later = elapsed + wait / WINDOW_SECONDS
    if later < 1:  # still this window: the previous count has slid out far enough for one more
        assert previous * (1 - later) + current + 1 <= limit + 1e-6
    else:  # the next window, where this window's count is the previous one
        assert current * (1 - (later - 1)) + 1 <= limit + 1e-6
