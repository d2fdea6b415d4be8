"""`log(offset, limitBytes)` returns exactly the bytes from `offset`, at most `limitBytes`, `complete` only at the end.

Issue 13 saw a client paging a 357-byte log lose text: `limitBytes` was ignored and an offset inside a chunk skipped
to the next chunk. A multi-byte character is never split: an offset inside one starts the page at its first byte (the
page's `offset` says so), and a page ends before a character that would not fit, unless it is the page's first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from app.domain.runs import LogChunk
from app.services.runs import log_page
from tests.api.pipeline_fixtures import create_pipeline
from tests.api.run_helpers import execute, finished
from tests.conftest import GraphQLClient

MakeProject = Callable[..., Awaitable[dict[str, Any]]]

LINES = ["plain ascii line\n", "é and € and 😀\n", "x" * 40 + "\n", "ünïcödé 😀😀\n", "end\n"]
LOG_PAGE = """
query($r: ID!, $offset: Int!, $limit: Int!) {
  run(id: $r) { ... on Run { stages { name logBytes
    log(offset: $offset, limitBytes: $limit) { ... on StageLog { offset text nextOffset complete } }
  } } }
}
"""


def _chunks(lines: list[str]) -> tuple[list[LogChunk], bytes]:
    chunks, offset = [], 0
    for line in lines:
        chunks.append(LogChunk(stage="s", offset=offset, text=line))
        offset += len(line.encode())
    return chunks, "".join(lines).encode()


def _window(chunks: list[LogChunk], offset: int) -> list[LogChunk]:
    """What the repository hands over: the chunk holding ``offset`` and every later one."""
    return [c for c in chunks if c.offset + len(c.text.encode()) > offset]


def test_every_offset_and_limit_gives_exactly_the_bytes_there() -> None:
    chunks, data = _chunks(LINES)
    for offset in range(len(data) + 3):
        for limit in range(1, 24):
            page = log_page("s", offset, limit, _window(chunks, offset), end=len(data), finished=True)
            encoded = page.text.encode()
            assert data[page.offset : page.next_offset] == encoded
            if offset >= len(data):
                assert (page.text, page.next_offset, page.complete) == ("", offset, True)
                continue
            # Starts at the offset, or at the first byte of the character holding it.
            assert page.offset <= offset < page.offset + 4 and data[page.offset] & 0xC0 != 0x80
            assert len(encoded) <= limit or len(page.text) == 1, (offset, limit, page)
            assert page.next_offset > offset, "a page always makes progress"
            assert page.complete == (page.next_offset == len(data))


def test_paging_with_next_offset_rebuilds_the_log_and_unfinished_is_never_complete() -> None:
    chunks, data = _chunks(LINES)
    for limit in (1, 2, 3, 5, 17, 1000):
        offset, text, pages = 0, "", 0
        while True:
            page = log_page("s", offset, limit, _window(chunks, offset), end=len(data), finished=False)
            assert not page.complete
            if not page.text:
                break
            text, offset, pages = text + page.text, page.next_offset, pages + 1
        assert text.encode() == data and pages >= len(data) // max(limit, 4)


async def test_paging_a_real_stage_log_at_chunk_boundaries(
    gql: GraphQLClient, make_project: MakeProject, mongo: Any
) -> None:
    project = await make_project()
    # One printf per line with a pause, so the worker stores several chunks.
    command = "; ".join(f"printf '%s' '{line.rstrip()}'; echo; sleep 0.3" for line in LINES)
    written = await create_pipeline(gql, project["id"], stages=[{"name": "talk", "command": command, "outs": []}])
    assert written["__typename"] == "PipelineWritten", written
    run = await finished(gql, await execute(gql, written["pipeline"]["id"]))
    assert run["state"] == "SUCCEEDED", run
    log_bytes: list[int] = []

    async def page(offset: int, limit: int) -> dict[str, Any]:
        stages = (await gql.execute(LOG_PAGE, {"r": run["id"], "offset": offset, "limit": limit}))["run"]["stages"]
        log_bytes.append(stages[0]["logBytes"])
        result: dict[str, Any] = stages[0]["log"]
        return result

    whole = await page(0, 100_000)
    data = whole["text"].encode()  # DVC's own lines come first; the stage's lines follow
    assert "".join(LINES) in whole["text"] and whole["complete"] is True and log_bytes == [len(data)]
    stored = mongo.run_events.find({"run_id": run["id"], "type": "log", "stage": "talk"}).sort("offset", 1)
    boundaries = [int(doc["offset"]) for doc in stored]
    assert len(boundaries) >= 3, f"the stage's log was stored in {len(boundaries)} chunks; the test needs several"
    for boundary in boundaries[1:]:
        for offset in (boundary - 1, boundary, boundary + 1):
            for limit in (1, 3, 10):
                got = await page(offset, limit)
                assert data[got["offset"] : got["nextOffset"]] == got["text"].encode(), (offset, limit, got)
                assert got["offset"] <= offset and got["nextOffset"] > offset
                assert len(got["text"].encode()) <= limit or len(got["text"]) == 1
                assert got["complete"] is (got["nextOffset"] == len(data))
    past = await page(len(data) + 10, 10)
    assert (past["text"], past["complete"]) == ("", True)
    offset, rebuilt = 0, b""
    while True:
        got = await page(offset, 7)
        rebuilt += got["text"].encode()
        offset = got["nextOffset"]
        if got["complete"]:
            break
    assert rebuilt == data
