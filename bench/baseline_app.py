"""The list baseline: a bare Starlette endpoint returning the same pipeline documents as `pipelines(first: N)`.

Same database and collection, same driver (PyMongo async), the same two reads (the project, then the page of its
pipelines), the same JSON shape as the GraphQL answer; served by uvicorn with the same settings as the API. No
authentication and no access check: it is the floor a hand-written endpoint could reach.
    GET /pipelines?projectId=<id>&first=50
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bson import ObjectId
from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Document = dict[str, Any]


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017"))
    app.state.db = client[os.environ.get("MONGODB_DATABASE", "dvc_pipelines")]
    try:
        yield
    finally:
        await client.close()


def stage_json(stage: Document) -> Document:
    return {
        "name": stage["name"],
        "command": stage["cmd"],
        "deps": list(stage.get("deps") or []),
        "outs": list(stage.get("outs") or []),
    }


async def pipelines(request: Request) -> JSONResponse:
    db = request.app.state.db
    project_id = request.query_params["projectId"]
    first = int(request.query_params.get("first", "20"))
    if await db.projects.find_one({"_id": ObjectId(project_id)}) is None:
        return JSONResponse({"data": {"pipelines": {"__typename": "NotFoundError"}}})
    docs = await db.pipelines.find({"project_id": project_id}).sort("_id", 1).limit(first + 1).to_list()
    edges = [
        {"node": {"id": str(d["_id"]), "name": d["name"], "stages": [stage_json(s) for s in d.get("stages", [])]}}
        for d in docs[:first]
    ]
    return JSONResponse({"data": {"pipelines": {"edges": edges}}})


async def health(request: Request) -> JSONResponse:
    await request.app.state.db.command("ping")
    return JSONResponse({"ok": True})


app = Starlette(
    routes=[Route("/pipelines", pipelines, methods=["GET"]), Route("/health", health, methods=["GET"])],
    lifespan=lifespan,
)
