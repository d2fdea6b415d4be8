"""The GraphiQL page at GET /graphql, with its browser assets served by the service itself.

`.ci/graphiql-assets.sh` (``make tools``; the Dockerfile at build time) fetches pinned npm packages into
``GRAPHIQL_ASSETS_DIR``; the API serves them under ``/graphiql/``, so the explorer works in a closed network.
When they are missing, the same page loads the same pinned files from a public CDN instead.

Subscriptions go over graphql-ws (the ``graphql-transport-ws`` protocol). Browsers cannot set headers on a
WebSocket handshake, so the page sends the Authorization header of GraphiQL's Headers tab in ``connection_init``,
where the server reads it (app.main's ``on_ws_connect``).
"""

from __future__ import annotations

import json
from pathlib import Path

ASSETS_PATH = "/graphiql"
PAGE_SCRIPT = (Path(__file__).parent / "graphiql.js").read_text()
"""The page's own script: GraphiQL with a fetcher that sends subscriptions over graphql-ws."""
CDN = "https://unpkg.com"

# name served -> (package path on the CDN, Subresource Integrity hash). Same versions as .ci/graphiql-assets.sh.
ASSET_FILES: dict[str, tuple[str, str]] = {
    "react.production.min.js": (
        "react@18.2.0/umd/react.production.min.js",
        "sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8",
    ),
    "react-dom.production.min.js": (
        "react-dom@18.2.0/umd/react-dom.production.min.js",
        "sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh",
    ),
    "graphiql.min.js": (
        "graphiql@3.8.3/graphiql.min.js",
        "sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie",
    ),
    "graphiql.min.css": (
        "graphiql@3.8.3/graphiql.min.css",
        "sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM",
    ),
    "graphql-ws.min.js": (
        "graphql-ws@5.16.0/umd/graphql-ws.min.js",
        "sha384-oEPbisbEBMo7iCrbQcKx244HXUjGnF1jyS8hkVZ3oCwnw9c9oLfY70c1RKeKj3+i",
    ),
}

DEFAULT_QUERY = """# Put your API token in the Headers tab below:
#   {"Authorization": "Bearer dvcs_..."}
# On its first start `make run` printed one; another: .venv/bin/python -m app create-token NAME
# Run with Ctrl-Enter. The Docs panel (top left) describes every type and field.
query {
  me { name }
  projects(first: 10) { edges { node { id name state } } }
}
"""


def assets_present(directory: Path) -> bool:
    return all((directory / name).is_file() for name in ASSET_FILES)


def page(*, local_assets: bool) -> str:
    """The page, loading its assets from the service (``local_assets``) or from the CDN."""

    def url(name: str) -> str:
        return f"{ASSETS_PATH}/{name}" if local_assets else f"{CDN}/{ASSET_FILES[name][0]}"

    def script(name: str) -> str:
        return f'<script src="{url(name)}" integrity="{ASSET_FILES[name][1]}" crossorigin="anonymous"></script>'

    css = "graphiql.min.css"
    stylesheet = f'<link rel="stylesheet" href="{url(css)}" integrity="{ASSET_FILES[css][1]}" crossorigin="anonymous">'
    return _TEMPLATE.format(
        source="this service" if local_assets else f"{CDN} (run 'make tools' to serve them locally)",
        stylesheet=stylesheet,
        scripts="\n    ".join(
            script(name) for name in ("react.production.min.js", "react-dom.production.min.js", "graphql-ws.min.js")
        ),
        graphiql_script=script("graphiql.min.js"),
        default_query=json.dumps(DEFAULT_QUERY),
        page_script=PAGE_SCRIPT,
    )


_TEMPLATE = """<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>GraphiQL - DVC pipelines service</title>
    <!-- No favicon request: every path but /health and GraphiQL's would answer 401. -->
    <link rel="icon" href="data:,">
    <!-- GraphiQL's assets come from {source}. -->
    <style>
      body {{ height: 100%; margin: 0; width: 100%; overflow: hidden; }}
      #graphiql {{ height: 100vh; }}
    </style>
    {stylesheet}
    {scripts}
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL...</div>
    {graphiql_script}
    <script>window.GRAPHIQL_DEFAULT_QUERY = {default_query};</script>
    <script>
{page_script}    </script>
  </body>
</html>
"""
