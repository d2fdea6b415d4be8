"""`RunRepository.list_page` on the real store: newest first, exact pages, whether it asks for one project or several.

One project is sent as an equality (FerretDB pushes it down to PostgreSQL), several as `$in` (filtered in FerretDB):
both shapes must give the same pages, filters and cursors included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient

from app.db import Database, Document, ensure_indexes
from app.domain.runs import RunOptions, RunState, StageRun, StageRunState, Trigger
from app.repositories.runs import RunRepository
from tests.stack import Stack


@pytest.fixture
async def runs(stack: Stack) -> AsyncIterator[RunRepository]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(stack.env["MONGODB_URL"], tz_aware=True)
    db: Database = client[f"list_page_{ObjectId()}"]
    await ensure_indexes(db)
    yield RunRepository(db)
    await client.drop_database(db.name)
    await client.close()


async def _create(runs: RunRepository, project_id: str, pipeline_id: str) -> str:
    run = await runs.create(
        project_id=project_id,
        pipeline_id=pipeline_id,
        pipeline_name="p",
        options=RunOptions(),
        triggered_by="u",
        trigger=Trigger.API,
        stages=[StageRun(name="s", command="true", state=StageRunState.PENDING)],
    )
    return run.id


async def _all_pages(
    runs: RunRepository, project_ids: list[str], pipeline_id: str | None = None, state: RunState | None = None
) -> list[list[str]]:
    pages: list[list[str]] = []
    after: str | None = None
    while True:
        page = await runs.list_page(project_ids=project_ids, pipeline_id=pipeline_id, state=state, first=2, after=after)
        pages.append([r.id for r in page.items])
        if not page.has_next_page:
            return pages
        after = page.items[-1].id


async def test_one_project_and_several_give_the_same_exact_pages(runs: RunRepository) -> None:
    a, b, c = (str(ObjectId()) for _ in range(3))
    created: list[tuple[str, str, str]] = []  # (run id, project, pipeline), oldest first
    for index in range(7):
        project = (a, b, c)[index % 3]
        pipeline = f"{project}-{index % 2}"
        created.append((await _create(runs, project, pipeline), project, pipeline))
    await runs.set_fields(created[0][0], state=RunState.RUNNING.value)

    def newest_first(keep: Callable[[str, str, str], bool]) -> list[str]:
        return [run_id for run_id, project, pipeline in reversed(created) if keep(run_id, project, pipeline)]

    def paged(ids: list[str]) -> list[list[str]]:
        return [ids[i : i + 2] for i in range(0, len(ids), 2)] or [[]]

    only_a = newest_first(lambda _r, p, _q: p == a)
    assert len(only_a) == 3
    assert await _all_pages(runs, [a]) == paged(only_a)
    a_and_b = newest_first(lambda _r, p, _q: p in (a, b))
    assert await _all_pages(runs, [a, b]) == paged(a_and_b)
    assert await _all_pages(runs, [b, a]) == paged(a_and_b)

    pipeline = f"{a}-0"
    of_pipeline = newest_first(lambda _r, _p, q: q == pipeline)
    assert of_pipeline and await _all_pages(runs, [a], pipeline_id=pipeline) == paged(of_pipeline)

    queued_a = newest_first(lambda r, p, _q: p == a and r != created[0][0])
    assert await _all_pages(runs, [a], state=RunState.QUEUED) == paged(queued_a)
    assert await _all_pages(runs, [a], state=RunState.RUNNING) == [[created[0][0]]]
    assert await _all_pages(runs, [str(ObjectId())]) == [[]]
