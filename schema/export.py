"""Print the GraphQL schema (SDL) the API serves, as checked in at schema/schema.graphql.

    .venv/bin/python -m schema.export > schema/schema.graphql

tests/test_schema_file.py fails while the two differ. The settings only change request limits, not the
schema, so the defaults (no environment) give the served SDL.
"""

from __future__ import annotations

import sys

from app.settings import Settings
from schema.schema import build_schema

REGENERATE = ".venv/bin/python -m schema.export > schema/schema.graphql"


def sdl() -> str:
    return build_schema(Settings.from_env({})).as_str() + "\n"


if __name__ == "__main__":
    sys.stdout.write(sdl())
