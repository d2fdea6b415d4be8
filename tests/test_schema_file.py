"""schema/schema.graphql is the schema the API serves (clients and reviewers read the checked-in file)."""

from __future__ import annotations

import difflib

from graphql import (
    build_client_schema,
    build_schema,
    get_introspection_query,
    lexicographic_sort_schema,
    print_schema,
)

from schema.export import REGENERATE, sdl
from tests.conftest import GraphQLClient
from tests.stack import ROOT

SCHEMA_FILE = ROOT / "schema" / "schema.graphql"


def _differences(expected: str, actual: str) -> str:
    diff = difflib.unified_diff(
        expected.splitlines(), actual.splitlines(), "schema/schema.graphql", "served schema", lineterm="", n=1
    )
    lines = list(diff)
    shown = "\n".join(lines[:60]) + ("\n..." if len(lines) > 60 else "")
    return f"schema/schema.graphql is out of date; regenerate it with:\n    {REGENERATE}\n{shown}"


def test_the_checked_in_schema_is_the_one_the_code_builds() -> None:
    checked_in = SCHEMA_FILE.read_text()
    built = sdl()
    assert checked_in == built, _differences(checked_in, built)


async def test_the_running_api_serves_the_checked_in_schema(gql: GraphQLClient) -> None:
    # Both through graphql-core, in one order: the SDL's own order and introspection's differ.
    introspection = await gql.execute(get_introspection_query(descriptions=True, specified_by_url=True))
    served = print_schema(lexicographic_sort_schema(build_client_schema(introspection)))  # type: ignore[arg-type]
    checked_in = print_schema(lexicographic_sort_schema(build_schema(SCHEMA_FILE.read_text())))
    assert checked_in == served, _differences(checked_in, served)
