"""The schema's depth and alias limits: enforced, and built once so that a known document is validated once."""

from __future__ import annotations

from strawberry.extensions.validation_cache import _get_validate_cache

from app.settings import Settings
from schema.schema import CACHED_DOCUMENTS, build_schema


async def test_a_known_document_is_validated_once_and_the_limits_still_hold() -> None:
    schema = build_schema(Settings.from_env({"GRAPHQL_MAX_DEPTH": "3", "GRAPHQL_MAX_ALIASES": "2"}))
    cache = _get_validate_cache(CACHED_DOCUMENTS)
    query = "{ __typename }"
    assert (await schema.execute(query)).errors is None
    before = cache.cache_info()
    assert (await schema.execute(query)).errors is None
    after = cache.cache_info()
    assert (after.hits, after.misses) == (before.hits + 1, before.misses)

    too_deep = "{ a { b { c { d { e } } } } }"
    result = await schema.execute(too_deep)
    assert any("exceeds maximum operation depth of 3" in error.message for error in result.errors or [])
    aliased = "{ a: __typename b: __typename c: __typename }"
    result = await schema.execute(aliased)
    assert any("Allowed: 2" in error.message for error in result.errors or []), result.errors
