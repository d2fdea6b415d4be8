"""Runs commit their results to git; history, revisions, tags, diffs between commits, and a dirty working tree."""

from __future__ import annotations

import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.api.pipeline_fixtures import write_file
from tests.api.run_helpers import execute, finished
from tests.conftest import GraphQLClient, MakeUser, workspace_of
from tests.results.fixtures import PARAMS, copy_workspace, dvc_json, results_project
from tests.stack import Stack

MakeProject = Callable[..., Awaitable[dict[str, Any]]]

COMMIT_RUN = """
mutation($id: ID!, $message: String) {
  commitRun(runId: $id, message: $message) {
    __typename ... on RunCommitted { sha note } ... on Error { message }
  }
}
"""

RUN_COMMIT = "query($id: ID!) { run(id: $id) { ... on Run { state commitSha commitNote options { commit } } } }"

HISTORY = """
query($id: ID!, $after: String) {
  pipeline(id: $id) {
    ... on Pipeline {
      history(first: 1, after: $after) {
        __typename
        ... on CommitConnection { edges { cursor node { sha message authorName } } pageInfo { hasNextPage endCursor } }
      }
    }
  }
}
"""

PROJECT_GIT = """
query($id: ID!) {
  project(id: $id) {
    ... on Project {
      revisions(first: 10) {
        __typename
        ... on Revisions {
          currentBranch branches { name sha } tags { name sha message }
          commits { edges { node { sha message authorName } } pageInfo { hasNextPage } }
        }
      }
      workingTree { __typename ... on WorkingTree { head dirty files { path change } } }
    }
  }
}
"""

TAG = """
mutation($p: ID!, $rev: String!, $name: String!, $message: String) {
  tagRevision(projectId: $p, rev: $rev, name: $name, message: $message) {
    __typename ... on RevisionTagged { tag { name sha message } } ... on Error { message }
  }
}
"""

DIFF = """
query($p: ID!, $a: String!, $b: String!, $all: Boolean!) {
  metricsDiff(projectId: $p, a: $a, b: $b, all: $all) {
    __typename
    ... on RevisionDiff { a b entries { file key old new delta } errors { file message revision } }
    ... on Error { message }
  }
  paramsDiff(projectId: $p, a: $a, b: $b, all: $all) {
    __typename ... on RevisionDiff { entries { file key old new delta } } ... on Error { message }
  }
}
"""


def as_cli_diff(entries: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Our entries in the shape of `dvc metrics diff --json`."""
    shaped: dict[str, dict[str, dict[str, Any]]] = {}
    for e in entries:
        change = {"old": e["old"], "new": e["new"]}
        if e["delta"] is not None:
            change["diff"] = e["delta"]
        shaped.setdefault(e["file"], {})[e["key"]] = change
    return shaped


def git_out(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


async def test_runs_commit_their_results_and_are_compared_by_revision(
    gql: GraphQLClient, make_project: MakeProject, make_user: MakeUser, stack: Stack, tmp_path: Path
) -> None:
    project = await make_project()
    workspace = workspace_of(stack, project["id"])
    pipeline_id = await results_project(gql, project["id"], lr=0.1)
    hook = workspace / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\ntouch {tmp_path}/hook-ran\nexit 1\n")
    hook.chmod(0o755)

    first = await execute(gql, pipeline_id, commit=True)
    assert (await finished(gql, first))["state"] == "SUCCEEDED"
    run = (await gql.execute(RUN_COMMIT, {"id": first}))["run"]
    assert run["options"]["commit"] is True and run["commitNote"] is None
    first_sha = run["commitSha"]
    assert first_sha == git_out(workspace, "rev-parse", "HEAD").strip()
    assert not (tmp_path / "hook-ran").exists()
    stat = git_out(workspace, "show", "--stat", "--format=%an%n%s", first_sha)
    author, subject = stat.splitlines()[:2]
    assert author == gql.name and first in subject
    committed = set(git_out(workspace, "show", "--name-only", "--format=", first_sha).split())
    assert {"pipelines/results/dvc.yaml", "pipelines/results/dvc.lock", "params.yaml", ".gitignore"} <= committed
    assert "model.txt" not in committed  # a DVC-cached output: DVC ignores it in git, the commit leaves it out
    assert all(not p.startswith(".dvc/cache") for p in committed)

    await write_file(gql, project["id"], "params.yaml", PARAMS.format(lr=0.3))
    tree = (await gql.execute(PROJECT_GIT, {"id": project["id"]}))["project"]["workingTree"]
    assert tree == {
        "__typename": "WorkingTree",
        "head": first_sha,
        "dirty": True,
        "files": [{"path": "params.yaml", "change": " M"}],
    }
    second = await execute(gql, pipeline_id)
    assert (await finished(gql, second))["state"] == "SUCCEEDED"
    stranger = await make_user()
    committed_second = (await gql.execute(COMMIT_RUN, {"id": second, "message": "lr 0.3 is better"}))["commitRun"]
    assert committed_second["__typename"] == "RunCommitted" and committed_second["note"] is None
    second_sha = committed_second["sha"]
    assert git_out(workspace, "log", "-1", "--format=%s", second_sha).strip() == "lr 0.3 is better"
    again = (await gql.execute(COMMIT_RUN, {"id": second}))["commitRun"]
    assert again["__typename"] == "ConflictError"
    assert (await stranger.execute(COMMIT_RUN, {"id": second}))["commitRun"]["__typename"] == "NotFoundError"
    older = (await gql.execute(COMMIT_RUN, {"id": first}))["commitRun"]
    assert older["__typename"] == "ConflictError"  # already committed

    nothing = await execute(gql, pipeline_id, commit=True)
    assert (await finished(gql, nothing))["state"] == "SUCCEEDED"
    unchanged = (await gql.execute(RUN_COMMIT, {"id": nothing}))["run"]
    assert unchanged["commitSha"] is None and "nothing" in unchanged["commitNote"]
    assert git_out(workspace, "rev-parse", "HEAD").strip() == second_sha

    page = (await gql.execute(HISTORY, {"id": pipeline_id}))["pipeline"]["history"]
    assert [e["node"]["sha"] for e in page["edges"]] == [second_sha] and page["pageInfo"]["hasNextPage"]
    following = await gql.execute(HISTORY, {"id": pipeline_id, "after": page["pageInfo"]["endCursor"]})
    rest = following["pipeline"]["history"]
    assert [e["node"]["sha"] for e in rest["edges"]] == [first_sha] and not rest["pageInfo"]["hasNextPage"]

    tagged = await gql.execute(TAG, {"p": project["id"], "rev": first_sha, "name": "v1.0", "message": "Release"})
    assert tagged["tagRevision"] == {
        "__typename": "RevisionTagged",
        "tag": {"name": "v1.0", "sha": first_sha, "message": "Release"},
    }
    duplicate = (await gql.execute(TAG, {"p": project["id"], "rev": "HEAD", "name": "v1.0"}))["tagRevision"]
    assert duplicate["__typename"] == "ConflictError"
    bad = (await gql.execute(TAG, {"p": project["id"], "rev": "HEAD", "name": "-d"}))["tagRevision"]
    assert bad["__typename"] == "ValidationError"
    assert (await stranger.execute(TAG, {"p": project["id"], "rev": "HEAD", "name": "x"}))["tagRevision"][
        "__typename"
    ] == "NotFoundError"
    revisions = (await gql.execute(PROJECT_GIT, {"id": project["id"]}))["project"]["revisions"]
    branch = revisions["currentBranch"]
    assert {"name": branch, "sha": second_sha} in revisions["branches"]
    assert revisions["tags"] == [{"name": "v1.0", "sha": first_sha, "message": "Release"}]
    assert [e["node"]["sha"] for e in revisions["commits"]["edges"]][:2] == [second_sha, first_sha]
    assert (await gql.execute(PROJECT_GIT, {"id": project["id"]}))["project"]["workingTree"]["dirty"] is False

    # Diffs between the two commits (by tag and by branch too), checked against DVC's CLI on a copy.
    copy = copy_workspace(workspace, tmp_path)
    for a, b in ((first_sha, second_sha), ("v1.0", branch)):
        for unchanged_too in (False, True):
            data = await gql.execute(DIFF, {"p": project["id"], "a": a, "b": b, "all": unchanged_too})
            extra = ["--all"] if unchanged_too else []
            assert data["metricsDiff"]["__typename"] == "RevisionDiff", data
            assert as_cli_diff(data["metricsDiff"]["entries"]) == dvc_json(copy, "metrics", "diff", a, b, *extra)
            assert as_cli_diff(data["paramsDiff"]["entries"]) == dvc_json(copy, "params", "diff", a, b, *extra)
    data = await gql.execute(DIFF, {"p": project["id"], "a": first_sha, "b": second_sha, "all": False})
    auc = next(e for e in data["metricsDiff"]["entries"] if e["key"] == "auc")
    assert auc["old"] == 0.6 and auc["new"] == 0.8 and abs(auc["delta"] - 0.2) < 1e-9
    lr = next(e for e in data["paramsDiff"]["entries"] if e["key"] == "train.lr")
    assert (lr["old"], lr["new"]) == (0.1, 0.3)
    for a in ("no-such-branch", "--output=/tmp/x", "a..b"):
        refused = (await gql.execute(DIFF, {"p": project["id"], "a": a, "b": "HEAD", "all": False}))["metricsDiff"]
        assert refused["__typename"] == "ValidationError", refused
