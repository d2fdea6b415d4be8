"""Pure logic: what a client learns of an unexpected failure, in a query and in each result of a subscription."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from pymongo.errors import ConnectionFailure

from app.domain.errors import DomainError
from schema.masking import INTERNAL_ERROR, PublicErrors

FAILURES: dict[str, Exception] = {
    "bug": RuntimeError("secret internals at /srv/x"),
    "outage": ConnectionFailure("mongo at 10.0.0.3 refused"),
    "domain": DomainError("the run already finished"),
}


@strawberry.type
class Query:
    @strawberry.field
    def fail(self, kind: str) -> str:
        raise FAILURES[kind]


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self, kind: str) -> AsyncGenerator[int, None]:
        yield 1
        raise FAILURES[kind]


schema = strawberry.Schema(query=Query, subscription=Subscription, extensions=[PublicErrors])


async def test_a_query_error_says_only_what_a_client_may_know() -> None:
    bug = await schema.execute('{ fail(kind: "bug") }')
    outage = await schema.execute('{ fail(kind: "outage") }')
    domain = await schema.execute('{ fail(kind: "domain") }')

    assert bug.errors is not None and [e.message for e in bug.errors] == [INTERNAL_ERROR]
    assert bug.errors[0].extensions == {"code": "INTERNAL_SERVER_ERROR"}
    assert outage.errors is not None and "MongoDB" in outage.errors[0].message
    assert "10.0.0.3" not in outage.errors[0].message
    assert outage.errors[0].extensions == {"code": "SERVICE_UNAVAILABLE"}
    assert domain.errors is not None and domain.errors[0].message == "the run already finished"


async def test_each_subscription_result_is_masked_as_it_goes_out() -> None:
    stream = await schema.subscribe('subscription { ticks(kind: "bug") }')
    results = [result async for result in stream]  # type: ignore[union-attr]

    assert results[0].data == {"ticks": 1} and not results[0].errors
    assert [e.message for e in results[-1].errors or []] == [INTERNAL_ERROR]
    assert "secret" not in str(results[-1].errors)
