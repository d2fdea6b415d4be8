"""GraphiQL in a real browser, on the running stack: headers, a query, and a live runUpdates subscription."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, WebSocket
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tests.api.pipeline_fixtures import create_pipeline
from tests.api.run_helpers import execute, wait_for_run
from tests.conftest import GraphQLClient, workspace_of
from tests.stack import Stack

MakeProject = Callable[..., Awaitable[dict[str, Any]]]
DEADLINE_MS = 60_000
# The stage waits (bounded) for the test's go-ahead, so its updates come while the page is subscribed.
WAITING_STAGE = (
    "for i in $(seq 600); do [ -e go ] && break; sleep 0.1; done; "
    "for i in 1 2 3; do echo tick-$i | tee -a ticks.txt; sleep 0.2; done"
)


COMPLETE_DEADLINE_SECONDS = 10.0


async def replace_text(page: Page, editor: str, text: str) -> None:
    """Type into one of GraphiQL's editors as a user would: click, select all, type over it."""
    await page.locator(f"{editor} .CodeMirror").first.click()
    await page.keyboard.press("Control+A")
    await page.keyboard.press("Delete")
    # insert_text, not type: CodeMirror would auto-close every bracket typed key by key.
    await page.keyboard.insert_text(text)


async def response_text(page: Page) -> str:
    return await page.locator(".graphiql-response").inner_text()


async def wait_for_response(page: Page, *fragments: str) -> None:
    try:
        await page.wait_for_function(
            """(fragments) => {
                const pane = document.querySelector(".graphiql-response");
                return pane && fragments.every((f) => pane.innerText.includes(f));
            }""",
            arg=list(fragments),
            timeout=DEADLINE_MS,
        )
    except PlaywrightTimeoutError:
        shot = Path(tempfile.mkdtemp(prefix="graphiql-")) / "page.png"
        await page.screenshot(path=str(shot))
        shown = await response_text(page) if await page.locator(".graphiql-response").count() else "(no response pane)"
        raise AssertionError(f"GraphiQL never showed {fragments}; it shows {shown!r} (screenshot: {shot})") from None


async def test_graphiql_runs_a_query_and_follows_a_run_live(
    browser: Browser, stack: Stack, gql: GraphQLClient, make_project: MakeProject
) -> None:
    project = await make_project()
    written = await create_pipeline(
        gql, project["id"], stages=[{"name": "ticks", "command": WAITING_STAGE, "outs": ["ticks.txt"]}]
    )
    assert written["__typename"] == "PipelineWritten", written

    context = await browser.new_context()
    page = await context.new_page()
    frames: list[dict[str, Any]] = []

    def on_websocket(socket: WebSocket) -> None:
        socket.on("framereceived", lambda payload: frames.append(json.loads(payload)))

    page.on("websocket", on_websocket)
    failed_assets: list[str] = []
    page.on("requestfailed", lambda request: failed_assets.append(request.url))
    try:
        await page.goto(f"{stack.base_url}/graphql", wait_until="load")
        await page.locator(".graphiql-query-editor .CodeMirror").wait_for(timeout=DEADLINE_MS)
        # Served by the service itself, not a CDN.
        sources = await page.eval_on_selector_all("script[src]", "scripts => scripts.map(s => s.src)")
        assert sources and all(s.startswith(f"{stack.base_url}/graphiql/") for s in sources), sources

        # The Headers tab (open by default) takes the token.
        headers_tab = page.get_by_role("button", name="Headers")
        if await headers_tab.count():
            await headers_tab.first.click()
        authorization = json.dumps({"Authorization": f"Bearer {gql.token}"})
        await replace_text(page, ".graphiql-editor-tool .graphiql-editor:not(.hidden)", authorization)

        await replace_text(page, ".graphiql-query-editor", "query { me { name } }")
        await page.locator(".graphiql-execute-button").click()
        await wait_for_response(page, gql.name)
        assert '"me"' in await response_text(page)

        run_id = await execute(gql, written["pipeline"]["id"])
        await wait_for_run(gql, run_id, lambda run: run["state"] == "RUNNING")
        await replace_text(
            page,
            ".graphiql-query-editor",
            f'subscription {{ runUpdates(runId: "{run_id}") {{ seq type runState stage text }} }}',
        )
        await page.locator(".graphiql-execute-button").click()
        # The page shows only the latest update, and the stage's first log line may replace the SNAPSHOT at once:
        # wait for the SNAPSHOT on the page's WebSocket instead.
        deadline = time.monotonic() + COMPLETE_DEADLINE_SECONDS
        while (
            not any(
                frame.get("type") == "next" and frame["payload"]["data"]["runUpdates"]["type"] == "SNAPSHOT"
                for frame in frames
            )
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.05)  # polling interval of a deadline-bounded wait

        (workspace_of(stack, project["id"]) / "go").touch()
        # The last update the page shows is the run's end, after the stage's log arrived live.
        await wait_for_response(page, "RUN_STATE", "SUCCEEDED")
        # The server completes the subscription right after the run's last update: let that frame arrive too.
        deadline = time.monotonic() + COMPLETE_DEADLINE_SECONDS
        while not any(frame.get("type") == "complete" for frame in frames) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # polling interval of a deadline-bounded wait
    finally:
        await context.close()

    updates = [frame["payload"]["data"]["runUpdates"] for frame in frames if frame.get("type") == "next"]
    kinds = [update["type"] for update in updates]
    assert kinds[0] == "SNAPSHOT", kinds
    logged = "".join(update["text"] or "" for update in updates if update["type"] == "LOG")
    assert all(f"tick-{i}" in logged for i in (1, 2, 3)), updates
    assert updates[-1]["type"] == "RUN_STATE" and updates[-1]["runState"] == "SUCCEEDED", updates
    assert any(frame.get("type") == "complete" for frame in frames), frames
    assert not failed_assets, failed_assets
