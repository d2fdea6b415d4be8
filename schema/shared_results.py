"""Rendering one subscription payload once for every subscriber that asked for the same thing.

A run's live events reach every subscriber of the run as the same objects (the API decodes each
Redis message once). Executing the same document against the same payload gives the same result,
so the first subscriber's execution result is kept on the payload and handed to the others: with
200 dashboards on a run, the selection set runs once per event, not 200 times. Documents are the
same objects for the same query text thanks to the parser cache (``schema.schema``); variables are
part of the key. Only payloads that opt in (``RendersOnce``) are shared, and they hold no
per-caller data: access to the run was checked when each subscription started.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from graphql import OperationDefinitionNode, OperationType
from graphql.pyutils import AwaitableOrValue
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

K = TypeVar("K")
V = TypeVar("V")

ResultKey = tuple[int, str]


class RendersOnce:
    """Mixin for subscription payload types: each instance keeps its execution result per document."""

    def __post_init__(self) -> None:
        self.rendered: dict[ResultKey, tuple[OperationDefinitionNode, Any]] = {}


class SharedResultExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, reusing a ``RendersOnce`` payload's result for the same document."""

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
