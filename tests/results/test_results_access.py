"""Results and history by role: a non-member is told not found, a viewer reads, only an editor commits or tags."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from app.services.auth import AuthService
from tests.api.run_helpers import execute, finished
from tests.conftest import CREATE_PROJECT, GraphQLClient
from tests.results.fixtures import results_project

READS = {
    "run results": (
        "query($r: ID!) { run(id: $r) { __typename ... on Run { metrics { entries { key } } params { entries { key } } "
        "plots { plots { id } } } } }",
        "run",
    ),
    "compareRuns": ("query($r: ID!) { compareRuns(runIds: [$r]) { __typename } }", "compareRuns"),
    "metricHistory": (
        'query($pl: ID!) { metricHistory(pipelineId: $pl, file: "eval/metrics.json", key: "auc") { __typename } }',
        "metricHistory",
    ),
    "metricsDiff": ("query($p: ID!) { metricsDiff(projectId: $p) { __typename } }", "metricsDiff"),
    "paramsDiff": ("query($p: ID!) { paramsDiff(projectId: $p) { __typename } }", "paramsDiff"),
    "pipeline metrics and history": (
        "query($pl: ID!) { pipeline(id: $pl) { __typename ... on Pipeline { metrics { __typename } "
        "params { __typename } history { __typename } } } }",
        "pipeline",
    ),
    "project revisions and working tree": (
        "query($p: ID!) { project(id: $p) { __typename ... on Project { revisions { __typename } "
        "workingTree { __typename } } } }",
        "project",
    ),
}

WRITES = {
    "commitRun": ("mutation($r: ID!) { commitRun(runId: $r) { __typename } }", "commitRun"),
    "tagRevision": (
        'mutation($p: ID!, $name: String!) { tagRevision(projectId: $p, rev: "HEAD", name: $name) { __typename } }',
        "tagRevision",
    ),
}


async def member(http: httpx.AsyncClient, auth: AuthService, role: str) -> GraphQLClient:
    user = await auth.create_user(f"{role}-{uuid.uuid4().hex[:8]}")
    _, secret = await auth.create_token(user_id=user.id, name="t", expires_in_days=1)
    return GraphQLClient(http, secret, user.name)


async def test_each_role_gets_what_it_may(http: httpx.AsyncClient, auth: AuthService) -> None:
    users = {role: await member(http, auth, role) for role in ("stranger", "viewer", "editor", "owner")}
    owner = users["owner"]
    created = await owner.execute(CREATE_PROJECT, {"input": {"name": f"r-{uuid.uuid4().hex[:8]}"}})
    project_id = created["createProject"]["project"]["id"]
    for role in ("viewer", "editor"):
        added = await owner.execute(
            "mutation($p: ID!, $u: String!, $r: Role!) { setProjectMember(projectId: $p, userName: $u, role: $r) "
            "{ __typename } }",
            {"p": project_id, "u": users[role].name, "r": role.upper()},
        )
        assert added["setProjectMember"]["__typename"] == "MembersChanged"
    pipeline_id = await results_project(owner, project_id)
    run_id = await execute(owner, pipeline_id)
    assert (await finished(owner, run_id))["state"] == "SUCCEEDED"
    variables: dict[str, Any] = {"p": project_id, "pl": pipeline_id, "r": run_id}

    def used(query: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        chosen = {k: v for k, v in (variables | (extra or {})).items() if f"${k}" in query}
        return chosen

    for name, (query, field) in READS.items():
        seen = {role: (await users[role].execute(query, used(query)))[field]["__typename"] for role in users}
        assert seen["stranger"] == "NotFoundError", (name, seen)
        assert all(seen[role] not in {"NotFoundError", "ForbiddenError"} for role in ("viewer", "editor", "owner")), (
            name,
            seen,
        )

    for name, (query, field) in WRITES.items():
        seen = {}
        for role in ("stranger", "viewer", "editor"):
            answer = await users[role].execute(query, used(query, {"name": f"t-{role}"}))
            seen[role] = answer[field]["__typename"]
        assert seen == {
            "stranger": "NotFoundError",
            "viewer": "ForbiddenError",
            "editor": "RunCommitted" if name == "commitRun" else "RevisionTagged",
        }, (name, seen)
