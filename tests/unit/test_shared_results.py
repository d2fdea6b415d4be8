"""The render-once executor (schema.shared_results) against Strawberry's own: same results, shared only for the
same document and variables."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import strawberry
from strawberry.extensions import ParserCache

from schema.shared_results import RendersOnce, execution_context_class, strawberry_version_checked


@strawberry.type
class Payload(RendersOnce):
    text: str
    count: int

    @strawberry.field
    def shout(self, times: int = 1) -> str:
        return self.text.upper() * times


@dataclass
class Feed:
    payloads: list[Payload]


@strawberry.type
class Query:
    ok: bool = True


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def payloads(self, info: strawberry.Info[Feed, None]) -> AsyncGenerator[Payload, None]:
        for payload in info.context.payloads:
            yield payload


def schema(shared: bool) -> strawberry.Schema:
    executor = execution_context_class() if shared else None
    # As in schema.schema: the parser cache makes one document object of one query text, for every subscriber.
    return strawberry.Schema(
        query=Query, subscription=Subscription, extensions=[ParserCache], execution_context_class=executor
    )


async def results(on: strawberry.Schema, query: str, payloads: list[Payload], **variables: Any) -> list[Any]:
    stream = await on.subscribe(query, variable_values=variables, context_value=Feed(payloads))
    return [result async for result in stream]  # type: ignore[union-attr]


async def test_a_payload_renders_once_per_document_and_as_strawberry_renders_it() -> None:
    assert execution_context_class() is not None, "this Strawberry is one the executor was checked with"
    shared, plain = schema(True), schema(False)
    payloads = [Payload(text="a", count=1), Payload(text="b", count=2)]
    query = "subscription($t: Int) { payloads { text shout(times: $t) } }"
    first = await results(shared, query, payloads, t=2)
    second = await results(shared, query, payloads, t=2)
    other = await results(shared, query, payloads, t=3)
    oracle = await results(plain, query, [Payload(text="a", count=1), Payload(text="b", count=2)], t=2)

    assert (
        [r.data for r in first]
        == [r.data for r in oracle]
        == [
            {"payloads": {"text": "a", "shout": "AA"}},
            {"payloads": {"text": "b", "shout": "BB"}},
        ]
    )
    assert all(a.data is b.data for a, b in zip(first, second, strict=True)), "rendered once, shared"
    assert [r.data for r in other] == [
        {"payloads": {"text": "a", "shout": "AAA"}},
        {"payloads": {"text": "b", "shout": "BBB"}},
    ]


def test_only_checked_strawberry_versions_get_the_executor() -> None:
    assert strawberry_version_checked("0.341.2")
    assert not strawberry_version_checked("0.342.0")
    assert not strawberry_version_checked("1.0")
