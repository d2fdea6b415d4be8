"""Property-based tests: generated inputs never crash the API, and stored data stays consistent.

Every answer is either a typed result or a GraphQL validation error of the query itself; never a
500, never an unmasked internal error. After any answer to createPipeline the pipeline exists as
a document AND a dvc.yaml, or as neither, and a refused request changed no file.
"""

from __future__ import annotations

import string
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.pipeline_fixtures import CREATE_PIPELINE, WRITE_FILE
from tests.conftest import CREATE_PROJECT, GraphQLClient, tree_digest, workspace_of
from tests.reliability import ReliabilityLog
from tests.stack import Stack

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
INTERNAL = ("Internal server error.",)
OUTCOMES: dict[str, Counter[str]] = {"createPipeline": Counter(), "writeFile": Counter()}

path_part = st.one_of(
    st.sampled_from(["..", ".", ".git", ".dvc", "data", "out", "dvc.yaml", "a b", "ünï", "-rf", "~"]),
    st.text(alphabet=string.ascii_letters + string.digits + "._-*?$`;|&", min_size=1, max_size=8),
)
paths = st.builds(
    lambda parts, absolute: ("/" if absolute else "") + "/".join(parts),
    st.lists(path_part, min_size=0, max_size=4),
    st.booleans(),
)
names = st.one_of(
    st.text(min_size=0, max_size=12),
    st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=12),
)
commands = st.one_of(
    st.just(""),
    st.just("   "),
    st.sampled_from(["echo ok > out.txt", "exit 3", "python3 -c 'x'"]),
    st.text(max_size=40),
)
arbitrary_stage = st.fixed_dictionaries(
    {
        "name": names,
        "command": commands,
        "deps": st.lists(paths, max_size=3),
        "outs": st.lists(paths, max_size=3),
        "params": st.lists(st.one_of(names, st.builds(lambda p, k: f"{p}:{k}", paths, names)), max_size=2),
    }
)
# Well-formed stages too, so that some generated pipelines are accepted and their storage is checked.
plain_names = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=6)
sound_stage = st.builds(
    lambda name, out, dep: {"name": name, "command": f"echo ok > {out}.out", "deps": dep, "outs": [f"{out}.out"]},
    plain_names,
    plain_names,
    st.lists(st.sampled_from(["params.yaml", "a.out", "b.out"]), max_size=2, unique=True),
)
stages = st.lists(st.one_of(sound_stage, sound_stage, arbitrary_stage), min_size=0, max_size=5)


def assert_typed(body: dict[str, Any], field: str) -> str:
    """The answer is a typed union member (or a validation error of the query); never an internal error."""
    errors = body.get("errors") or []
    assert not [e for e in errors if e["message"] in INTERNAL], errors
    if errors:
        return "graphql-error"
    typename: str = body["data"][field]["__typename"]
    return typename


@FUZZ
@given(generated=stages, name=st.one_of(plain_names, names))
async def test_create_pipeline_with_generated_stages(
    generated: list[dict[str, Any]], name: str, gql: GraphQLClient, stack: Stack, mongo: Any
) -> None:
    project = await fuzz_project(gql)
    root = workspace_of(stack, project)
    before = tree_digest(root)
    documents_before = mongo.pipelines.count_documents({"project_id": project})

    response = await gql.post(CREATE_PIPELINE, {"input": {"projectId": project, "name": name, "stages": generated}})

    assert response.status_code in (200, 413), response.text
    outcome = assert_typed(response.json(), "createPipeline") if response.status_code == 200 else "too-large"
    OUTCOMES["createPipeline"][outcome] += 1
    stored = mongo.pipelines.count_documents({"project_id": project}) - documents_before
    if outcome == "PipelineWritten":
        written = response.json()["data"]["createPipeline"]["pipeline"]
        assert stored == 1
        assert (root / written["path"]).is_file()
    else:
        assert outcome in ("ValidationError", "ConflictError", "graphql-error", "too-large"), outcome
        assert stored == 0
        assert tree_digest(root) == before


@FUZZ
@given(path=paths, content=st.text(max_size=200))
async def test_write_and_read_files_at_generated_paths(
    path: str, content: str, gql: GraphQLClient, stack: Stack
) -> None:
    project = await fuzz_project(gql)
    root = workspace_of(stack, project)

    written = await gql.post(WRITE_FILE, {"input": {"projectId": project, "path": path, "content": content}})
    read = await gql.post(
        "query($p: ID!, $f: String!) { project(id: $p) { ... on Project { file(path: $f) { __typename "
        "... on TextFile { content } } } } }",
        {"p": project, "f": path},
    )

    outcome = assert_typed(written.json(), "writeFile")
    OUTCOMES["writeFile"][outcome] += 1
    assert outcome in ("FileWritten", "ValidationError"), outcome
    answer = read.json()["data"]["project"]["file"]
    if outcome == "FileWritten":
        assert answer == {"__typename": "TextFile", "content": content}
        target = (root / path).resolve()
        assert target.is_relative_to(root.resolve())
    else:
        assert answer["__typename"] in ("ValidationError", "NotFoundError")


CONSISTENCY = {
    "createPipeline": "every pipeline stored as document and dvc.yaml together or not at all",
    "writeFile": "every written file read back the same and lies inside the workspace",
}


def test_report_what_the_generated_inputs_met(reliability: ReliabilityLog) -> None:
    for operation, seen in sorted(OUTCOMES.items()):
        assert sum(seen.values()) >= FUZZ.max_examples, f"{operation} ran fewer examples than configured"
        success = "PipelineWritten" if operation == "createPipeline" else "FileWritten"
        assert seen[success] > 0 and seen["ValidationError"] > 0, f"{operation} met only {dict(seen)}"
        reliability.record(
            "Generated inputs (hypothesis)",
            operation,
            tried=f"{sum(seen.values())} generated requests (names, commands, paths with '..', '/', globs, "
            "shell characters, unicode)",
            observed=", ".join(f"{count} {outcome}" for outcome, count in sorted(seen.items()))
            + "; no internal error; "
            + CONSISTENCY[operation],
        )


_projects: dict[str, str] = {}


async def fuzz_project(gql: GraphQLClient) -> str:
    """One project per test user, made once: examples share it, as a user's requests would."""
    if gql.token not in _projects:
        created = (await gql.execute(CREATE_PROJECT, {"input": {"name": "fuzz"}}))["createProject"]
        _projects[gql.token] = created["project"]["id"]
        await gql.execute(
            WRITE_FILE, {"input": {"projectId": _projects[gql.token], "path": "params.yaml", "content": "a: 1\n"}}
        )
    return _projects[gql.token]
