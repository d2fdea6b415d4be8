"""Every query, mutation and subscription, called by a non-member, a viewer, an editor and the owner.

A non-member is told "not found" (another tenant's project cannot even be confirmed to exist); a
member whose role is too low is told "forbidden"; everyone else gets the operation's own answer, the
success type listed next to each operation (an answer of nothing at all, or any other type, fails).
Token mutations are per user, not per project: each user manages their own, and another user's token
is "not found".
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.services.auth import AuthService
from tests.api.pipeline_fixtures import create_pipeline, write_example_files
from tests.api.run_helpers import execute, finished
from tests.api.test_files import upload
from tests.conftest import CREATE_PROJECT, GraphQLClient
from tests.stack import Stack
from tests.ws import subscribe

ROLES = ("stranger", "viewer", "editor", "owner")
QUICK = [{"name": "quick", "command": "echo hi > hi.txt", "outs": ["hi.txt"]}]


def quick_stages(tag: str) -> list[dict[str, Any]]:
    """A one-stage pipeline whose output no other pipeline of the project writes."""
    return [{"name": "quick", "command": f"echo hi > {tag}.txt", "outs": [f"{tag}.txt"]}]


@dataclass
class World:
    stack: Stack
    users: dict[str, GraphQLClient]
    project_id: str
    pipeline_id: str
    run_id: str

    def as_(self, role: str) -> GraphQLClient:
        return self.users[role]


async def _user(http: httpx.AsyncClient, auth: AuthService, role: str) -> GraphQLClient:
    user = await auth.create_user(f"{role}-{uuid.uuid4().hex[:8]}")
    _, secret = await auth.create_token(user_id=user.id, name="matrix", expires_in_days=1)
    return GraphQLClient(http, secret, user.name)


async def _project(owner: GraphQLClient, members: dict[str, GraphQLClient]) -> str:
    created = (await owner.execute(CREATE_PROJECT, {"input": {"name": f"m-{uuid.uuid4().hex[:8]}"}}))["createProject"]
    project_id: str = created["project"]["id"]
    for role, member in members.items():
        result = await owner.execute(
            "mutation($p: ID!, $u: String!, $r: Role!) { setProjectMember(projectId: $p, userName: $u, role: $r) "
            "{ __typename } }",
            {"p": project_id, "u": member.name, "r": role.upper()},
        )
        assert result["setProjectMember"]["__typename"] == "MembersChanged"
    return project_id


@pytest.fixture(scope="module")
async def world(stack: Stack, http: httpx.AsyncClient, auth: AuthService) -> World:
    users = {role: await _user(http, auth, role) for role in ROLES}
    owner = users["owner"]
    project_id = await _project(owner, {"viewer": users["viewer"], "editor": users["editor"]})
    await write_example_files(owner, project_id)
    written = await create_pipeline(owner, project_id, name="ml", stages=QUICK)
    run_id = await execute(owner, written["pipeline"]["id"])
    await finished(owner, run_id)
    return World(stack=stack, users=users, project_id=project_id, pipeline_id=written["pipeline"]["id"], run_id=run_id)


Operation = Callable[[World, str], Awaitable[str]]


async def typename(client: GraphQLClient, query: str, variables: dict[str, Any], field: str) -> str:
    data = await client.execute(query, variables)
    name: str = data[field]["__typename"]
    return name


# --- reads: any member -------------------------------------------------------------------------


async def inner(client: GraphQLClient, query: str, variables: dict[str, Any], field: str, *path: str) -> str:
    """The typename at ``path`` inside ``field`` when ``field`` answered its success type, else ``field``'s own."""
    value = (await client.execute(query, variables))[field]
    for key in path:
        if key not in value:
            break
        value = value[key]
        value = value[0] if isinstance(value, list) else value
    name: str = value["__typename"]
    return name


async def read_project(w: World, role: str) -> str:
    query = 'query($p: ID!) { project(id: $p) { __typename ... on Project { files(path: ".") { __typename } } } }'
    return await inner(w.as_(role), query, {"p": w.project_id}, "project", "files")


async def read_project_file(w: World, role: str) -> str:
    query = 'query($p: ID!) { project(id: $p) { __typename ... on Project { file(path: "data.csv") { __typename } } } }'
    return await inner(w.as_(role), query, {"p": w.project_id}, "project", "file")


async def read_pipelines(w: World, role: str) -> str:
    return await typename(
        w.as_(role), "query($p: ID!) { pipelines(projectId: $p) { __typename } }", {"p": w.project_id}, "pipelines"
    )


async def read_pipeline_status_and_dag(w: World, role: str) -> str:
    query = (
        "query($id: ID!) { pipeline(id: $id) { __typename "
        "... on Pipeline { status { __typename } dag { __typename } } } }"
    )
    status = await inner(w.as_(role), query, {"id": w.pipeline_id}, "pipeline", "status")
    dag = await inner(w.as_(role), query, {"id": w.pipeline_id}, "pipeline", "dag")
    return status if status == dag else f"{status}/{dag}"


async def read_runs(w: World, role: str) -> str:
    return await typename(
        w.as_(role), "query($p: ID!) { runs(projectId: $p) { __typename } }", {"p": w.project_id}, "runs"
    )


async def read_run_and_log(w: World, role: str) -> str:
    query = "query($r: ID!) { run(id: $r) { __typename ... on Run { stages { log { __typename } } } } }"
    return await inner(w.as_(role), query, {"r": w.run_id}, "run", "stages", "log")


async def dry_run(w: World, role: str) -> str:
    return await typename(
        w.as_(role),
        "mutation($id: ID!) { dryRunPipeline(id: $id) { __typename } }",
        {"id": w.pipeline_id},
        "dryRunPipeline",
    )


async def follow_run(w: World, role: str) -> str:
    query = "subscription($r: ID!) { runUpdates(runId: $r) { type } }"
    try:
        updates = [u async for u in subscribe(w.stack.base_url, query, {"r": w.run_id}, token=w.as_(role).token)]
    except AssertionError as error:
        return "NotFoundError" if "not found" in str(error) else f"error: {error}"
    return "allowed" if updates and updates[0]["runUpdates"]["type"] == "SNAPSHOT" else "nothing"


async def follow_run_batches(w: World, role: str) -> str:
    query = "subscription($r: ID!) { runUpdateBatches(runId: $r) { lastSeq updates { type } } }"
    try:
        batches = [b async for b in subscribe(w.stack.base_url, query, {"r": w.run_id}, token=w.as_(role).token)]
    except AssertionError as error:
        return "NotFoundError" if "not found" in str(error) else f"error: {error}"
    first = batches[0]["runUpdateBatches"] if batches else {}
    return "allowed" if first.get("updates") and first["updates"][0]["type"] == "SNAPSHOT" else "nothing"


async def watch_pipeline_runs(w: World, role: str) -> str:
    return await _watch_new_runs(w, role, "subscription($p: ID!) { pipelineRuns(pipelineId: $p) { id state } }")


async def watch_project_runs(w: World, role: str) -> str:
    return await _watch_new_runs(w, role, "subscription($p: ID!) { projectRuns(projectId: $p) { id state } }")


async def _watch_new_runs(w: World, role: str, query: str) -> str:
    field = "pipelineRuns" if "pipelineRuns" in query else "projectRuns"
    variables = {"p": w.pipeline_id if field == "pipelineRuns" else w.project_id}

    async def first() -> dict[str, Any]:
        async for data in subscribe(w.stack.base_url, query, variables, token=w.as_(role).token):
            return data
        return {}

    try:
        waiting = asyncio.create_task(first())
        # The subscription has no acknowledgement: the owner starts runs until the subscriber hears of one (or is
        # refused), so none can go out before it registered. Bounded, as a run takes about a second here.
        deadline = asyncio.get_running_loop().time() + 30
        while not waiting.done() and asyncio.get_running_loop().time() < deadline:
            await finished(w.as_("owner"), await execute(w.as_("owner"), w.pipeline_id))
        data = await asyncio.wait_for(waiting, 5)
    except AssertionError as error:
        return "NotFoundError" if "not found" in str(error) else f"error: {error}"
    return "allowed" if data.get(field, {}).get("id") else "nothing"


# --- editor and above --------------------------------------------------------------------------


async def write_file(w: World, role: str) -> str:
    query = 'mutation($p: ID!) { writeFile(input: {projectId: $p, path: "notes.txt", content: "x"}) { __typename } }'
    return await typename(w.as_(role), query, {"p": w.project_id}, "writeFile")


async def upload_a_file(w: World, role: str) -> str:
    body = await upload(w.as_(role), w.project_id, f"uploads/{role}.bin", b"\x00\x01data")
    assert not body.get("errors"), body
    name: str = body["data"]["uploadFile"]["__typename"]
    return name


async def create_a_pipeline(w: World, role: str) -> str:
    tag = f"by-{role}-{uuid.uuid4().hex[:6]}"
    result = await create_pipeline(w.as_(role), w.project_id, name=tag, stages=quick_stages(tag))
    name: str = result["__typename"]
    return name


async def update_pipeline(w: World, role: str) -> str:
    version = (
        await w.as_("owner").execute(
            "query($id: ID!) { pipeline(id: $id) { ... on Pipeline { version } } }", {"id": w.pipeline_id}
        )
    )["pipeline"]["version"]
    query = (
        "mutation($id: ID!, $v: Int!, $s: [StageInput!]!) "
        "{ updatePipeline(input: {id: $id, expectedVersion: $v, stages: $s}) { __typename } }"
    )
    return await typename(w.as_(role), query, {"id": w.pipeline_id, "v": version, "s": QUICK}, "updatePipeline")


async def validate(w: World, role: str) -> str:
    return await typename(
        w.as_(role),
        "mutation($id: ID!) { validatePipeline(id: $id) { __typename } }",
        {"id": w.pipeline_id},
        "validatePipeline",
    )


async def execute_pipeline(w: World, role: str) -> str:
    query = "mutation($id: ID!) { executePipeline(id: $id) { __typename ... on RunQueued { run { id } } } }"
    data = (await w.as_(role).execute(query, {"id": w.pipeline_id}))["executePipeline"]
    if data["__typename"] == "RunQueued":
        await finished(w.as_("owner"), data["run"]["id"])
    name: str = data["__typename"]
    return name


async def retry_run(w: World, role: str) -> str:
    query = "mutation($r: ID!) { retryRun(id: $r) { __typename ... on RunQueued { run { id } } } }"
    data = (await w.as_(role).execute(query, {"r": w.run_id}))["retryRun"]
    if data["__typename"] == "RunQueued":
        await finished(w.as_("owner"), data["run"]["id"])
    name: str = data["__typename"]
    return name


async def cancel_finished_run(w: World, role: str) -> str:
    # Allowed roles meet the run's own answer: it already finished.
    return await typename(
        w.as_(role), "mutation($r: ID!) { cancelRun(id: $r) { __typename } }", {"r": w.run_id}, "cancelRun"
    )


async def delete_a_pipeline(w: World, role: str) -> str:
    tag = f"doomed-{uuid.uuid4().hex[:6]}"
    target = await create_pipeline(w.as_("owner"), w.project_id, name=tag, stages=quick_stages(tag))
    query = "mutation($id: ID!) { deletePipeline(id: $id) { __typename } }"
    return await typename(w.as_(role), query, {"id": target["pipeline"]["id"]}, "deletePipeline")


# --- owner only --------------------------------------------------------------------------------


async def set_member(w: World, role: str) -> str:
    query = (
        "mutation($p: ID!, $u: String!) { setProjectMember(projectId: $p, userName: $u, role: VIEWER) { __typename } }"
    )
    return await typename(w.as_(role), query, {"p": w.project_id, "u": w.as_("viewer").name}, "setProjectMember")


async def remove_member(w: World, role: str) -> str:
    query = "mutation($p: ID!, $u: String!) { removeProjectMember(projectId: $p, userName: $u) { __typename } }"
    # The owner removes and re-adds the editor; the others try to remove the viewer.
    target = "editor" if role == "owner" else "viewer"
    name = await typename(w.as_(role), query, {"p": w.project_id, "u": w.as_(target).name}, "removeProjectMember")
    if name == "MembersChanged":
        await _restore_editor(w)
    return name


async def _restore_editor(w: World) -> None:
    query = (
        "mutation($p: ID!, $u: String!) { setProjectMember(projectId: $p, userName: $u, role: EDITOR) { __typename } }"
    )
    await w.as_("owner").execute(query, {"p": w.project_id, "u": w.as_("editor").name})


async def set_limits(w: World, role: str) -> str:
    query = "mutation($p: ID!) { setProjectLimits(projectId: $p, limits: {logBytes: 1048576}) { __typename } }"
    return await typename(w.as_(role), query, {"p": w.project_id}, "setProjectLimits")


async def set_requirements_path(w: World, role: str) -> str:
    # null: the default (requirements.txt); the shared world's later runs are not changed by it.
    query = "mutation($p: ID!) { setProjectRequirementsPath(projectId: $p, path: null) { __typename } }"
    return await typename(w.as_(role), query, {"p": w.project_id}, "setProjectRequirementsPath")


async def set_network(w: World, role: str) -> str:
    # false: the default; the shared world's stages keep no network.
    query = "mutation($p: ID!) { setProjectNetwork(projectId: $p, allowed: false) { __typename } }"
    return await typename(w.as_(role), query, {"p": w.project_id}, "setProjectNetwork")


async def delete_project(w: World, role: str) -> str:
    query = "mutation($p: ID!) { deleteProject(id: $p) { __typename } }"
    if role != "owner":
        return await typename(w.as_(role), query, {"p": w.project_id}, "deleteProject")
    # The owner deletes a project of its own with the same members, keeping the shared world intact.
    spare = await _project(w.as_("owner"), {"viewer": w.as_("viewer"), "editor": w.as_("editor")})
    return await typename(w.as_(role), query, {"p": spare}, "deleteProject")


READ, EDIT, OWN = "viewer", "editor", "owner"
# (operation, the lowest role allowed, its success type). cancelRun on a finished run answers a conflict.
OPERATIONS: list[tuple[Operation, str, str]] = [
    (read_project, READ, "Folder"),
    (read_project_file, READ, "TextFile"),
    (read_pipelines, READ, "PipelineConnection"),
    (read_pipeline_status_and_dag, READ, "PipelineStatus/Dag"),
    (read_runs, READ, "RunConnection"),
    (read_run_and_log, READ, "StageLog"),
    (dry_run, READ, "DryRunPlan"),
    (follow_run, READ, "allowed"),
    (follow_run_batches, READ, "allowed"),
    (watch_pipeline_runs, READ, "allowed"),
    (watch_project_runs, READ, "allowed"),
    (write_file, EDIT, "FileWritten"),
    (upload_a_file, EDIT, "FileWritten"),
    (create_a_pipeline, EDIT, "PipelineWritten"),
    (update_pipeline, EDIT, "PipelineWritten"),
    (validate, EDIT, "ValidationReport"),
    (execute_pipeline, EDIT, "RunQueued"),
    (retry_run, EDIT, "RunQueued"),
    (cancel_finished_run, EDIT, "ConflictError"),
    (delete_a_pipeline, EDIT, "PipelineDeleted"),
    (set_member, OWN, "MembersChanged"),
    (remove_member, OWN, "MembersChanged"),
    (set_limits, OWN, "LimitsChanged"),
    (set_requirements_path, OWN, "RequirementsPathChanged"),
    (set_network, OWN, "NetworkChanged"),
    (delete_project, OWN, "ProjectDeleted"),
]
RANK = {"viewer": 1, "editor": 2, "owner": 3}
ALLOWED = {operation.__name__: success for operation, _, success in OPERATIONS}


@pytest.mark.parametrize(("operation", "needs"), [(o, n) for o, n, _ in OPERATIONS], ids=list(ALLOWED))
async def test_each_role_gets_exactly_what_it_may(world: World, operation: Operation, needs: str) -> None:
    outcomes = {role: await operation(world, role) for role in ROLES}

    expected = {
        role: "NotFoundError"
        if role == "stranger"
        else ALLOWED[operation.__name__]
        if RANK[role] >= RANK[needs]
        else "ForbiddenError"
        for role in ROLES
    }
    assert outcomes == expected


TOKENS = "query { apiTokens { id name revokedAt } }"
CREATE_TOKEN = """
mutation($name: String!) {
  createApiToken(name: $name, expiresInDays: 1) { __typename ... on ApiTokenCreated { secret token { id } } }
}
"""
REVOKE_TOKEN = "mutation($id: ID!) { revokeApiToken(id: $id) { __typename } }"


async def test_token_mutations_reach_only_the_callers_own_tokens(world: World) -> None:
    created = {}
    for role in ROLES:
        result = (await world.as_(role).execute(CREATE_TOKEN, {"name": f"own-{role}"}))["createApiToken"]
        assert result["__typename"] == "ApiTokenCreated", result
        created[role] = result
    for role in ROLES:
        for other in ROLES:
            if other == role:
                continue
            victim = created[other]["token"]["id"]
            answer = (await world.as_(role).execute(REVOKE_TOKEN, {"id": victim}))["revokeApiToken"]
            assert answer["__typename"] == "NotFoundError", (role, other, answer)
        listed = {t["id"] for t in (await world.as_(role).execute(TOKENS))["apiTokens"]}
        assert created[role]["token"]["id"] in listed
        assert not listed & {created[o]["token"]["id"] for o in ROLES if o != role}
    for role in ROLES:  # nobody's token was revoked by another user; each user can revoke their own
        own = GraphQLClient(world.as_(role).http, created[role]["secret"], world.as_(role).name)
        assert (await own.post("query { me { name } }")).status_code == 200
        answer = (await world.as_(role).execute(REVOKE_TOKEN, {"id": created[role]["token"]["id"]}))["revokeApiToken"]
        assert answer["__typename"] == "ApiToken"
        assert (await own.post("query { me { name } }")).status_code == 401
