"""Rendering one subscription payload once for every subscriber that asked for the same thing; the one place the API
reaches below Strawberry's documented surface.

A run's live events reach every subscriber of the run as the same objects: the hub hands each Redis message to all of
them and ``app.events.wire`` decodes it once (cached), ``schema.runs.types`` makes one GraphQL payload per event tuple
(``IdentityMemo``). Executing the same document against the same payload gives the same result, so the first
subscriber's execution result is kept on the payload (``RendersOnce``) and handed to the others by the executor below;
``app.main`` then encodes that result's JSON once (``IdentityMemo`` again). With 200 dashboards on a run, the selection
set runs once per event, not 200 times (docs/benchmarks.md, the fan-out to 200 subscribers, measures it). Documents
are the same objects for the same query text thanks to the parser cache (``schema.schema``); variables are part of the
key. Only payloads that opt in are shared, and they hold no per-caller data: access to the run was checked when each
subscription started.

Strawberry documents ``Schema(execution_context_class=...)`` but not its default class
(``strawberry.schema.schema.StrawberryGraphQLCoreExecutionContext``); a subclass of graphql-core's own, public, executor
would lose what Strawberry's adds (``info.operation_extensions``), so Strawberry's class is extended, here only, and
only on the Strawberry versions it was read against (CHECKED_STRAWBERRY): on any other ``execution_context_class()``
answers None and Strawberry executes as it does by default (each subscriber rendered on its own: slower, same results).
tests/unit/test_shared_results.py compares the two.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from importlib.metadata import version
from typing import Any, Generic, TypeVar

from graphql import OperationDefinitionNode, OperationType
from graphql.execution import Executor
from graphql.pyutils import AwaitableOrValue

logger = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")

ResultKey = tuple[int, str]

CHECKED_STRAWBERRY = ("0.341",)
"""Minor versions of strawberry-graphql whose default execution context this was checked against (0.341.2)."""


class RendersOnce:
    """Mixin for subscription payload types: each instance keeps its execution result per document."""

    def __post_init__(self) -> None:
        self.rendered: dict[ResultKey, tuple[OperationDefinitionNode, Any]] = {}


class IdentityMemo(Generic[K, V]):
    """Values made once per object (by identity), for the last ``size`` objects."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[int, tuple[K, V]] = OrderedDict()

    def get(self, key: K, make: Callable[[K], V]) -> V:
        hit = self._items.get(id(key))
        if hit is not None and hit[0] is key:
            return hit[1]
        value = make(key)
        self._items[id(key)] = (key, value)  # holding the key keeps its id() from being reused meanwhile
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return value


def strawberry_version_checked(found: str) -> bool:
    """True for a strawberry-graphql version whose default execution context this module was written against."""
    return ".".join(found.split(".")[:2]) in CHECKED_STRAWBERRY


def execution_context_class() -> type[Executor[Any]] | None:
    """The render-once executor, or None (Strawberry's default) on a Strawberry version it was not checked with."""
    found = version("strawberry-graphql")
    if not strawberry_version_checked(found):
        logger.warning("strawberry-graphql %s is not one render-once was checked with: each subscriber renders", found)
        return None
    from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

    class SharedResultExecutor(StrawberryGraphQLCoreExecutionContext):
        """Strawberry's executor, reusing a ``RendersOnce`` payload's result for the same document and variables."""

        def execute_operation(self, serially: bool | None = None) -> Any:
            payload = self.root_value
            operation = self.operation
            if not isinstance(payload, RendersOnce) or operation.operation != OperationType.SUBSCRIPTION:
                return super().execute_operation(serially)
            key = (id(operation), repr(sorted(self.variable_values.coerced.items())))
            hit = payload.rendered.get(key)
            if hit is not None and hit[0] is operation:  # the identity check rules out a reused id()
                return hit[1]
            result: AwaitableOrValue[Any] = super().execute_operation(serially)
            if self.is_awaitable(result):
                result = asyncio.ensure_future(result)  # a future, unlike a coroutine, can be awaited by many
            payload.rendered[key] = (operation, result)
            return result

    return SharedResultExecutor
