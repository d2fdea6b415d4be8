"""What every benchmark gets: the running stack, a GraphQL client, the mode's sizes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.config import Sizes
from bench.gql import GraphQLClient
from bench.stack import Stack


@dataclass(frozen=True, slots=True)
class Context:
    stack: Stack
    gql: GraphQLClient
    sizes: Sizes
    scratch: Path
    """A directory for the harness's own files (load scripts' output)."""

    def workspace(self, project_id: str) -> Path:
        return self.stack.workspace_root / project_id
