"""Helpers shared by the job modules."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, Concatenate, ParamSpec

from app.domain.errors import DomainError, Issue
from app.domain.pipelines import ValidationReport
from app.jobs_protocol import JobPayload, failure

logger = logging.getLogger(__name__)

P = ParamSpec("P")


def answers_domain_errors(
    job: Callable[Concatenate[dict[str, Any], P], Coroutine[Any, Any, JobPayload]],
) -> Callable[Concatenate[dict[str, Any], P], Coroutine[Any, Any, JobPayload]]:
    """Expected failures travel back as payloads; anything else is a bug and is raised (and logged by arq)."""

    @functools.wraps(job)
    async def wrapper(ctx: dict[str, Any], /, *args: P.args, **kwargs: P.kwargs) -> JobPayload:
        try:
            return await job(ctx, *args, **kwargs)
        except DomainError as error:
            logger.info("%s answered %s: %s", job.__name__, type(error).__name__, error.message)
            return failure(error)

    return wrapper


def report_from(issues: list[Issue]) -> ValidationReport:
    return ValidationReport(valid=not issues, issues=issues, checked_at=stored_now())


def stored_now() -> datetime:
    """Now, rounded up to the millisecond MongoDB keeps. A validation's moment is compared with files' times later
    (app.services.workspace_changes): truncated, a file written just before it looked written after it. The
    workspace lock is held while files are written and checked, so nothing else writes in that millisecond."""
    now = datetime.now(UTC)
    extra = now.microsecond % 1000
    return now if extra == 0 else now + timedelta(microseconds=1000 - extra)
