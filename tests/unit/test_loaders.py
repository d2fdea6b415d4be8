"""The per-request DataLoaders read each related document once per request, and keep access checks."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from app.domain.errors import NotFound
from app.state import Services
from schema.loaders import Loaders


@dataclass
class Doc:
    id: str
    project_id: str


@dataclass
class Reads:
    count: Counter[str] = field(default_factory=Counter)


class Projects:
    def __init__(self, reads: Reads, visible: set[str]) -> None:
        self.reads, self.visible = reads, visible

    async def get(self, *, caller: str, project_id: str) -> Doc:
        self.reads.count[f"project:{project_id}"] += 1
        await asyncio.sleep(0)
        if project_id not in self.visible:
            raise NotFound("project", project_id)
        return Doc(project_id, project_id)


class Repository:
    def __init__(self, reads: Reads, kind: str, project_of: dict[str, str]) -> None:
        self.reads, self.kind, self.project_of = reads, kind, project_of

    async def get(self, doc_id: str) -> Doc:
        self.reads.count[f"{self.kind}:{doc_id}"] += 1
        await asyncio.sleep(0)
        return Doc(doc_id, self.project_of[doc_id])

    async def list_page(self, *, project_id: str, first: int, after: str | None) -> list[str]:
        self.reads.count[f"pipelines-of:{project_id}"] += 1
        return [f"{project_id}-p{i}" for i in range(first)]


def services(reads: Reads, project_of: dict[str, str], visible: set[str]) -> Services:
    fake: Any = type("S", (), {})()
    fake.projects = Projects(reads, visible)
    fake.runs = type("R", (), {"runs": Repository(reads, "run", project_of)})()
    fake.pipelines = type("P", (), {"pipelines": Repository(reads, "pipeline", project_of)})()
    return cast(Services, fake)


async def test_fifty_runs_of_one_project_read_the_project_once() -> None:
    reads = Reads()
    project_of = {f"r{i}": "a" for i in range(50)}
    loaders = Loaders(services(reads, project_of, {"a"}), "alice")

    runs = await asyncio.gather(*(loaders.runs.load(f"r{i}") for i in range(50)), loaders.runs.load("r0"))

    assert [r.id for r in runs[:50]] == [f"r{i}" for i in range(50)]
    assert reads.count["project:a"] == 1
    assert all(reads.count[f"run:r{i}"] == 1 for i in range(50))
    # Later in the same request: nothing is read again.
    await loaders.runs.load("r7")
    await loaders.projects.load("a")
    assert sum(reads.count.values()) == 51


async def test_a_document_in_a_project_the_caller_cannot_see_is_not_found_alone() -> None:
    reads = Reads()
    loaders = Loaders(services(reads, {"mine": "a", "theirs": "b"}, {"a"}), "alice")

    mine, theirs = await asyncio.gather(
        loaders.pipelines.load("mine"), loaders.pipelines.load("theirs"), return_exceptions=True
    )

    assert isinstance(mine, Doc) and mine.id == "mine"
    assert isinstance(theirs, NotFound) and "pipeline" in theirs.message and "theirs" in theirs.message
    with pytest.raises(NotFound):
        await loaders.project_pipelines.load(("b", 5, None))
    assert reads.count["pipelines-of:b"] == 0


async def test_without_cache_every_later_load_reads_again_but_one_batch_reads_a_key_once() -> None:
    reads = Reads()
    loaders = Loaders(services(reads, {"r1": "a"}, {"a"}), "alice", cache=False)

    await asyncio.gather(loaders.projects.load("a"), loaders.projects.load("a"))
    await loaders.projects.load("a")

    assert reads.count["project:a"] == 2
