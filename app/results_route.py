"""GET /runs/{run_id}/images/{index}: an image plot of a run, for its project's members only.

AuthMiddleware has authenticated the caller; a run the caller may not see answers 404, like a missing one.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.domain.errors import NotFound
from app.state import AppState


async def run_image(request: Request) -> Response:
    state: AppState = request.state.app
    # AuthMiddleware lets a browser's page request (Accept: text/html, no query) through unauthenticated on any
    # path, for GraphiQL's static page; here that is simply an unauthenticated request.
    principal = getattr(request.state, "principal", None)
    if principal is None:
        body = {"errors": [{"message": "an API token is required", "extensions": {"code": "UNAUTHENTICATED"}}]}
        return JSONResponse(body, status_code=401, headers={"www-authenticate": 'Bearer realm="dvc-pipelines"'})
    try:
        index = int(request.path_params["index"])
        image = await state.services.results.image(
            caller=principal.user.id, run_id=request.path_params["run_id"], index=index
        )
    except (NotFound, ValueError):
        return JSONResponse(
            {"errors": [{"message": "not found", "extensions": {"code": "NOT_FOUND"}}]}, status_code=404
        )
    return Response(
        image.data,
        media_type=image.content_type,
        # The bytes are user data: never let a browser sniff them into something active.
        headers={"x-content-type-options": "nosniff", "content-security-policy": "default-src 'none'; sandbox"},
    )
