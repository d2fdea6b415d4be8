"""A validation's moment as MongoDB keeps it (milliseconds) is never before the moment itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workers.jobs.common import stored_now


def test_stored_now_is_a_whole_millisecond_not_before_now() -> None:
    for _ in range(200):
        before = datetime.now(UTC)
        moment = stored_now()
        after = datetime.now(UTC)
        assert moment.microsecond % 1000 == 0
        # Truncating to milliseconds (what BSON does) leaves it unchanged, and it is not before the call began.
        assert moment.replace(microsecond=moment.microsecond // 1000 * 1000) == moment
        assert before <= moment <= after + timedelta(milliseconds=1)
