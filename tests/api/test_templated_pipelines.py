"""Cloned repositories that use DVC's templating (vars, foreach, matrix, ${...}), with DVC as the oracle.

Each test makes a real git repository, clones it with createProject(repositoryUrl), and compares what
the API answers with the `dvc` CLI run on a copy of the workspace.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from tests.api.pipeline_fixtures import write_file
from tests.api.run_helpers import execute, finished, stage_states
from tests.conftest import GraphQLClient, tree_digest, workspace_of
from tests.stack import Stack

MakeProject = Callable[..., Awaitable[dict[str, Any]]]

PARAMS = """\
lrs: [0.1, 0.2]
model:
  depth: 3
"""

# Every templating shape at once: vars from a file and inline, foreach over a list, a dict and a list of
# dicts, matrix, ${item...}/${key} in cmd, deps, outs and params, a list cmd, a name with '.'.
TEMPLATED = """\
vars:
  - params.yaml
  - out_dir: results
stages:
  prep.v2:
    cmd:
      - mkdir -p ${out_dir}
      - echo prep > ${out_dir}/prep.txt
    outs:
      - ${out_dir}/prep.txt
  train:
    foreach: ${lrs}
    do:
      cmd: echo lr=${item} > ${out_dir}/train-${item}.txt
      deps:
        - ${out_dir}/prep.txt
      outs:
        - ${out_dir}/train-${item}.txt
  report:
    foreach:
      small: {size: 1}
      large: {size: 9}
    do:
      cmd: echo ${key} ${item.size} > report-${key}.txt
      outs:
        - report-${key}.txt
  fold:
    foreach:
      - {name: a, n: 1}
      - {name: b, n: 2}
    do:
      cmd: echo ${item.n} > fold-${item.name}.txt
      outs:
        - fold-${item.name}.txt
  eval:
    matrix:
      lr: ${lrs}
      seed: [1, 2]
    cmd: echo ${item.lr} ${item.seed} ${model.depth} > eval-${item.lr}-${item.seed}.txt
    params:
      - model.depth
    outs:
      - eval-${item.lr}-${item.seed}.txt
"""

PIPELINES = """
query($projectId: ID!) {
  pipelines(projectId: $projectId) {
    ... on PipelineConnection {
      edges {
        node {
          id name path version stages { name command deps outs params } validation { valid issues { path message } }
        }
      }
    }
  }
}
"""

DAG = """
query($id: ID!) {
  pipeline(id: $id) { ... on Pipeline { dag { ... on Dag { nodes { name } edges { source target } } } } }
}
"""

STATUS = """
query($id: ID!) {
  pipeline(id: $id) {
    ... on Pipeline {
      status {
        __typename
        ... on PipelineStatus { upToDate stale stages { name upToDate changes { kind path key state stage } } }
        ... on Error { message }
      }
    }
  }
}
"""

VALIDATE = """
mutation($id: ID!) {
  validatePipeline(id: $id) {
    __typename ... on ValidationReport { valid issues { path message } } ... on Error { message }
  }
}
"""

DRY_RUN = """
mutation($id: ID!, $options: DryRunInput) {
  dryRunPipeline(id: $id, options: $options) {
    __typename
    ... on DryRunPlan { stages { name certainty upstream } upToDate }
    ... on Error { message }
    ... on ValidationError { issues { path message } }
  }
}
"""

WRITE_RESULT = """
    __typename
    ... on PipelineWritten { pipeline { id version stages { name command } } createdStages validation { valid } }
    ... on TemplatedPipelineError { message path constructs }
    ... on ValidationError { message issues { path message } }
    ... on Error { message }
"""

UPDATE = f"""
mutation($input: UpdatePipelineInput!) {{ updatePipeline(input: $input) {{ {WRITE_RESULT} }} }}
"""

REPLACE = f"""
mutation($input: ReplacePipelineFileInput!) {{ replacePipelineFile(input: $input) {{ {WRITE_RESULT} }} }}
"""

RUNNING_STAGE = re.compile(r"Running stage '(?:[^']*:)?([^':]+)'")


def git_repository(folder: Path, files: dict[str, str], before_commit: Callable[[Path], None] | None = None) -> Path:
    """A real git repository with DVC initialised and ``files`` committed (after ``before_commit``, if given)."""
    folder.mkdir(parents=True)
    for relative, text in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    dvc(folder, "init", "-q")
    if before_commit is not None:
        before_commit(folder)
    subprocess.run(["git", "add", "-A"], cwd=folder, check=True)
    commit = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "pipelines"]
    subprocess.run(commit, cwd=folder, check=True)
    return folder


def dvc(root: Path, *args: str) -> str:
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=root, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"dvc {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout


def copy_of(root: Path, destination: Path) -> Path:
    shutil.copytree(root, destination, symlinks=True)
    return destination


def outputs_and_lock(root: Path) -> tuple[Any, dict[str, str], dict[str, set[str]]]:
    """dvc.lock as data, every file a run may produce (outside .git, .dvc) by content, and .gitignore entries.

    dvc.lock is compared as data and each .gitignore as a set: stages that run in parallel add their entries in
    the order they finish.
    """
    return outputs_and_lock_in(root, ".")


async def cloned(gql: GraphQLClient, make_project: MakeProject, source: Path) -> tuple[str, dict[str, Any]]:
    project = await make_project(repository_url=str(source))
    edges = (await gql.execute(PIPELINES, {"projectId": project["id"]}))["pipelines"]["edges"]
    assert len(edges) == 1, edges
    return project["id"], edges[0]["node"]


async def plan_of(gql: GraphQLClient, pipeline_id: str, **options: Any) -> dict[str, Any]:
    plan: dict[str, Any] = (await gql.execute(DRY_RUN, {"id": pipeline_id, "options": options}))["dryRunPipeline"]
    return plan


async def test_a_cloned_templated_pipeline_lists_validates_and_runs_as_dvc_repro_does(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, tmp_path: Path
) -> None:
    source = git_repository(tmp_path / "upstream", {"params.yaml": PARAMS, "dvc.yaml": TEMPLATED})
    project_id, pipeline = await cloned(gql, make_project, source)
    root = workspace_of(stack, project_id)

    listed = dvc(root, "stage", "list", "--name-only").split()
    assert [s["name"] for s in pipeline["stages"]] == listed
    assert "eval@0.1-1" in listed and "report@small" in listed and "fold@0" in listed
    by_name = {s["name"]: s for s in pipeline["stages"]}
    assert by_name["eval@0.2-2"]["command"] == "echo 0.2 2 3 > eval-0.2-2.txt"
    assert by_name["train@0.1"]["outs"] == ["results/train-0.1.txt"]
    assert by_name["prep.v2"]["command"] == "mkdir -p results && echo prep > results/prep.txt"
    # DVC generated these names; the API's rule for names typed into createPipeline does not apply.
    assert pipeline["validation"] == {"valid": True, "issues": []}
    validated = (await gql.execute(VALIDATE, {"id": pipeline["id"]}))["validatePipeline"]
    assert validated == {"__typename": "ValidationReport", "valid": True, "issues": []}

    dag = (await gql.execute(DAG, {"id": pipeline["id"]}))["pipeline"]["dag"]
    assert {n["name"] for n in dag["nodes"]} == set(listed)
    assert {(e["source"], e["target"]) for e in dag["edges"]} == {("prep.v2", "train@0.1"), ("prep.v2", "train@0.2")}

    oracle = copy_of(root, tmp_path / "oracle")
    status = (await gql.execute(STATUS, {"id": pipeline["id"]}))["pipeline"]["status"]
    assert status["__typename"] == "PipelineStatus", status
    dvc_stale = set(json.loads(dvc(oracle, "status", "--json")))
    assert {s["name"] for s in status["stages"] if not s["upToDate"]} == dvc_stale == set(listed)

    plan = await plan_of(gql, pipeline["id"])
    assert plan["__typename"] == "DryRunPlan", plan
    repro = RUNNING_STAGE.findall(dvc(oracle, "repro"))
    assert [s["name"] for s in plan["stages"]] == repro

    run = await finished(gql, await execute(gql, pipeline["id"]))
    assert run["state"] == "SUCCEEDED", run
    assert set(stage_states(run).values()) == {"SUCCEEDED"}
    assert outputs_and_lock(root) == outputs_and_lock(oracle)

    after = (await gql.execute(STATUS, {"id": pipeline["id"]}))["pipeline"]["status"]
    assert after["upToDate"] is True and json.loads(dvc(oracle, "status", "--json")) == {}
    again = await finished(gql, await execute(gql, pipeline["id"]))
    assert set(stage_states(again).values()) == {"SKIPPED"}
    assert RUNNING_STAGE.findall(dvc(oracle, "repro")) == []


async def test_a_foreach_or_matrix_group_name_is_a_target_of_dry_runs_and_runs(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, tmp_path: Path
) -> None:
    source = git_repository(tmp_path / "upstream", {"params.yaml": PARAMS, "dvc.yaml": TEMPLATED})
    project_id, pipeline = await cloned(gql, make_project, source)
    root = workspace_of(stack, project_id)
    oracle = copy_of(root, tmp_path / "oracle")

    train = await plan_of(gql, pipeline["id"], targets=["train"])
    planned = [s["name"] for s in train["stages"]]
    assert planned[0] == "prep.v2" and sorted(planned) == ["prep.v2", "train@0.1", "train@0.2"]
    # singleItem and keepGoing are run options, so a dry run previews them too.
    single = await plan_of(gql, pipeline["id"], targets=["eval"], singleItem=True, keepGoing=True)
    matrix = ["eval@0.1-1", "eval@0.1-2", "eval@0.2-1", "eval@0.2-2"]
    assert sorted(s["name"] for s in single["stages"]) == matrix
    unknown = await plan_of(gql, pipeline["id"], targets=["nope"])
    assert unknown["__typename"] == "ValidationError"
    needs_targets = await plan_of(gql, pipeline["id"], singleItem=True)
    assert needs_targets["__typename"] == "ValidationError"

    assert sorted(RUNNING_STAGE.findall(dvc(oracle, "repro", "--single-item", "eval"))) == matrix
    run = await finished(gql, await execute(gql, pipeline["id"], targets=["eval"], singleItem=True))
    assert run["state"] == "SUCCEEDED", run
    assert stage_states(run) == dict.fromkeys(matrix, "SUCCEEDED")
    assert outputs_and_lock(root) == outputs_and_lock(oracle)

    # DVC's order among independent targets follows a set's (hash-seeded) order, so only the upstream stage's
    # place is fixed.
    repro = RUNNING_STAGE.findall(dvc(oracle, "repro", "train"))
    assert repro[0] == "prep.v2" and sorted(repro) == sorted(s["name"] for s in train["stages"])
    run = await finished(gql, await execute(gql, pipeline["id"], targets=["train"]))
    assert run["state"] == "SUCCEEDED", run
    assert stage_states(run) == {"prep.v2": "SUCCEEDED", "train@0.1": "SUCCEEDED", "train@0.2": "SUCCEEDED"}
    assert outputs_and_lock(root) == outputs_and_lock(oracle)


async def test_a_templated_pipeline_is_not_expanded_by_an_update_and_can_be_replaced_whole(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, tmp_path: Path
) -> None:
    vars_only = (
        "vars:\n  - greeting: hello\n"
        "stages:\n  say:\n    cmd: echo ${greeting} > said.txt\n    outs:\n      - said.txt\n"
    )
    source = git_repository(tmp_path / "upstream", {"dvc.yaml": vars_only})
    project_id, pipeline = await cloned(gql, make_project, source)
    root = workspace_of(stack, project_id)
    before = tree_digest(root)

    update = {
        "id": pipeline["id"],
        "expectedVersion": pipeline["version"],
        "stages": [{"name": "say", "command": "echo hi > said.txt", "outs": ["said.txt"]}],
    }
    refused = (await gql.execute(UPDATE, {"input": update}))["updatePipeline"]
    assert refused["__typename"] == "TemplatedPipelineError", refused
    assert refused["path"] == "dvc.yaml"
    assert refused["constructs"] == ["vars (top level)", "${...} in stage 'say' (cmd)"]
    assert tree_digest(root) == before

    text = (
        "vars:\n  - values.yaml\nstages:\n  say:\n    foreach: ${words}\n    do:\n"
        "      cmd: echo ${item} > said-${item}.txt\n      outs:\n        - said-${item}.txt\n"
    )
    replace = {
        "id": pipeline["id"],
        "expectedVersion": pipeline["version"],
        "dvcYaml": text,
        "params": {"path": "values.yaml", "content": "words: [one, two]\n"},
    }
    for wrong, why in [
        ({"dvcYaml": "stages:\n  a:\n    cmd: [unclosed\n"}, "not YAML"),
        ({"dvcYaml": "stages:\n  a:\n    command: echo\n"}, "not DVC's schema"),
        ({"params": {"path": "values.yaml", "content": "other: [one]\n"}}, "an interpolation DVC cannot resolve"),
        ({"params": {"path": "../outside.yaml", "content": "words: [x]\n"}}, "a path outside the workspace"),
        ({"params": {"path": "dvc.lock", "content": "words: [x]\n"}}, "one of DVC's own files"),
    ]:
        answer = (await gql.execute(REPLACE, {"input": {**replace, **wrong}}))["replacePipelineFile"]
        assert answer["__typename"] == "ValidationError", (why, answer)
        assert tree_digest(root) == before, why

    replaced = (await gql.execute(REPLACE, {"input": replace}))["replacePipelineFile"]
    assert replaced["__typename"] == "PipelineWritten", replaced
    assert replaced["pipeline"]["version"] == pipeline["version"] + 1
    assert replaced["createdStages"] == ["say@one", "say@two"] == dvc(root, "stage", "list", "--name-only").split()
    assert replaced["validation"] == {"valid": True}
    assert (root / "dvc.yaml").read_text() == text  # kept as written: templates and all
    assert (root / "values.yaml").read_text() == "words: [one, two]\n"

    stale = (await gql.execute(REPLACE, {"input": {**replace, "dvcYaml": vars_only}}))["replacePipelineFile"]
    assert stale["__typename"] == "ConflictError", stale
    assert (root / "dvc.yaml").read_text() == text

    oracle = copy_of(root, tmp_path / "oracle")
    run = await finished(gql, await execute(gql, pipeline["id"]))
    assert run["state"] == "SUCCEEDED", run
    dvc(oracle, "repro")
    assert outputs_and_lock(root) == outputs_and_lock(oracle)


async def test_status_names_an_out_of_date_stage_of_another_pipeline_as_dvc_status_with_deps_does(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, tmp_path: Path
) -> None:
    producer = "stages:\n  make_out:\n    cmd: cp input.txt made.txt\n    deps: [input.txt]\n    outs: [made.txt]\n"
    consumer = "stages:\n  use:\n    cmd: cp ../a/made.txt used.txt\n    deps: [../a/made.txt]\n    outs: [used.txt]\n"
    files = {"a/dvc.yaml": producer, "a/input.txt": "1\n", "b/dvc.yaml": consumer}
    project = await make_project(repository_url=str(git_repository(tmp_path / "upstream", files)))
    root = workspace_of(stack, project["id"])
    edges = (await gql.execute(PIPELINES, {"projectId": project["id"]}))["pipelines"]["edges"]
    pipelines = {e["node"]["path"]: e["node"]["id"] for e in edges}
    dvc(root, "repro", "b/dvc.yaml")  # set-up: both pipelines up to date

    fresh = (await gql.execute(STATUS, {"id": pipelines["b/dvc.yaml"]}))["pipeline"]["status"]
    assert fresh["upToDate"] is True, fresh
    await write_file(gql, project["id"], "a/input.txt", "2\n")

    status = (await gql.execute(STATUS, {"id": pipelines["b/dvc.yaml"]}))["pipeline"]["status"]
    oracle = copy_of(root, tmp_path / "oracle")
    with_deps = json.loads(dvc(oracle, "status", "--with-deps", "--json", "b/dvc.yaml"))
    assert status["upToDate"] is False
    assert status["stages"] == [
        {
            "name": "use",
            "upToDate": False,
            "changes": [{"kind": "UPSTREAM", "path": "a/dvc.yaml", "key": None, "state": None, "stage": "make_out"}],
        }
    ]
    # DVC names the same upstream stage, and nothing of B's own.
    assert set(with_deps) == {"a/dvc.yaml:make_out"}
    own = (await gql.execute(STATUS, {"id": pipelines["a/dvc.yaml"]}))["pipeline"]["status"]
    assert [(s["name"], [c["kind"] for c in s["changes"]]) for s in own["stages"]] == [("make_out", ["DEP"])]


# The other shapes of a real repository: a dvc.yaml in a subfolder with stage-level wdir, params from YAML, JSON,
# TOML and Python files and a whole file, a list cmd, persist, cache: false, frozen, always_changed, and the top-level
# params/metrics/plots/artifacts sections.
SHAPES = {
    "project/conf.json": '{"train": {"epochs": 2}}\n',
    "project/conf.toml": "[eval]\nthreshold = 0.5\n",
    "project/conf.py": "SEED = 7\n",
    "project/whole.yaml": "a: 1\nb: 2\n",
    "project/data/input.txt": "hello\n",
    "project/dvc.yaml": """\
params:
  - conf.json
metrics:
  - out/metrics.json
plots:
  - out/plot.csv
artifacts:
  model:
    path: out/model.txt
    type: model
stages:
  prepare:
    wdir: data
    cmd:
      - mkdir -p ../out
      - cp input.txt ../out/prepared.txt
    deps:
      - input.txt
    outs:
      - ../out/prepared.txt:
          persist: true
  train:
    cmd: cat out/prepared.txt conf.json > out/model.txt
    deps:
      - out/prepared.txt
    params:
      - conf.json:
          - train.epochs
      - conf.toml:
          - eval.threshold
      - conf.py:
          - SEED
      - whole.yaml:
    outs:
      - out/model.txt
  report:
    cmd: >-
      echo '{"acc": 1}' > out/metrics.json && echo 'x,y' > out/plot.csv
    deps:
      - out/model.txt
    metrics:
      - out/metrics.json:
          cache: false
    plots:
      - out/plot.csv:
          cache: false
  stamp:
    cmd: date +%s%N > stamp.txt
    always_changed: true
    outs:
      - stamp.txt:
          cache: false
  legacy:
    cmd: echo once > legacy.txt
    frozen: true
    outs:
      - legacy.txt:
          cache: false
""",
}


def ran_legacy_once(folder: Path) -> None:
    """A frozen stage as repositories have them: run once (dvc.lock entry, output in git), then frozen."""
    pipeline = folder / "project" / "dvc.yaml"
    frozen = pipeline.read_text()
    pipeline.write_text(frozen.replace("    frozen: true\n", ""))
    dvc(folder, "repro", "project/dvc.yaml:legacy")
    pipeline.write_text(frozen)


async def test_a_cloned_subfolder_pipeline_with_every_other_shape_validates_and_runs_as_dvc_repro_does(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, tmp_path: Path
) -> None:
    source = git_repository(tmp_path / "upstream", SHAPES, ran_legacy_once)
    project_id, pipeline = await cloned(gql, make_project, source)
    root = workspace_of(stack, project_id)

    assert pipeline["path"] == "project/dvc.yaml"
    listed = [name.rpartition(":")[2] for name in dvc(root, "stage", "list", "--name-only", "-R", "project").split()]
    assert [s["name"] for s in pipeline["stages"]] == listed
    train = next(s for s in pipeline["stages"] if s["name"] == "train")
    assert train["params"] == ["conf.json:train.epochs", "conf.toml:eval.threshold", "conf.py:SEED", "whole.yaml:"]
    assert pipeline["validation"] == {"valid": True, "issues": []}
    validated = (await gql.execute(VALIDATE, {"id": pipeline["id"]}))["validatePipeline"]
    assert validated == {"__typename": "ValidationReport", "valid": True, "issues": []}

    oracle = copy_of(root, tmp_path / "oracle")
    status = (await gql.execute(STATUS, {"id": pipeline["id"]}))["pipeline"]["status"]
    dvc_stale = {name.rpartition(":")[2] for name in json.loads(dvc(oracle, "status", "--json", "project/dvc.yaml"))}
    assert {s["name"] for s in status["stages"] if not s["upToDate"]} == dvc_stale

    plan = await plan_of(gql, pipeline["id"])
    repro = RUNNING_STAGE.findall(dvc(oracle, "repro", "project/dvc.yaml"))
    assert [s["name"] for s in plan["stages"]] == repro
    assert "legacy" in plan["upToDate"]  # frozen: never run, as by dvc repro

    run = await finished(gql, await execute(gql, pipeline["id"]))
    assert run["state"] == "SUCCEEDED", run
    ours, theirs = outputs_and_lock_in(root, "project"), outputs_and_lock_in(oracle, "project")
    assert ours[0]["stages"].keys() == theirs[0]["stages"].keys()
    # stamp is always_changed and writes the time: everything else is byte for byte what dvc repro wrote.
    for lock in (ours[0], theirs[0]):
        del lock["stages"]["stamp"]
    assert ours[0] == theirs[0]
    assert {p: d for p, d in ours[1].items() if "stamp" not in p} == {
        p: d for p, d in theirs[1].items() if "stamp" not in p
    }
    assert ours[2] == theirs[2]


def outputs_and_lock_in(root: Path, folder: str) -> tuple[Any, dict[str, str], dict[str, set[str]]]:
    """outputs_and_lock with the dvc.lock of ``folder``."""
    lock = yaml.safe_load((root / folder / "dvc.lock").read_text())
    digest = {
        path: value
        for path, value in tree_digest(root).items()
        if not path.startswith(".dvc") and Path(path).name not in {".gitignore", "dvc.lock"}
    }
    ignored = {str(p.relative_to(root)): set(p.read_text().splitlines()) for p in root.rglob(".gitignore")}
    return lock, digest, ignored


def dvc_fails(root: Path, *args: str) -> str:
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=root, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0, f"dvc {' '.join(args)} succeeded: {result.stdout}"
    return result.stderr


async def test_a_frozen_stage_that_never_ran_is_reproduced_as_dvc_repro_does(
    gql: GraphQLClient, make_project: MakeProject, stack: Stack, tmp_path: Path
) -> None:
    frozen = (
        "stages:\n  keep:\n    cmd: echo new > {out}\n    frozen: true\n"
        "    outs:\n      - {out}:\n          cache: false\n"
    )
    files = {
        "present/dvc.yaml": frozen.format(out="kept.txt"),
        "present/kept.txt": "committed\n",
        "missing/dvc.yaml": frozen.format(out="gone.txt"),
    }
    project = await make_project(repository_url=str(git_repository(tmp_path / "upstream", files)))
    root = workspace_of(stack, project["id"])
    edges = (await gql.execute(PIPELINES, {"projectId": project["id"]}))["pipelines"]["edges"]
    pipelines = {e["node"]["path"]: e["node"]["id"] for e in edges}
    oracle = copy_of(root, tmp_path / "oracle")

    # DVC never runs a frozen stage's command, but records the outputs of one without a dvc.lock entry...
    plan = await plan_of(gql, pipelines["present/dvc.yaml"])
    assert [s["name"] for s in plan["stages"]] == ["keep"]
    dvc(oracle, "repro", "present/dvc.yaml")
    run = await finished(gql, await execute(gql, pipelines["present/dvc.yaml"]))
    assert run["state"] == "SUCCEEDED", run
    assert (root / "present/kept.txt").read_text() == "committed\n"
    assert outputs_and_lock_in(root, "present") == outputs_and_lock_in(oracle, "present")

    # ... and fails when they are missing.
    assert "missing data" in dvc_fails(oracle, "repro", "missing/dvc.yaml")
    failed = await finished(gql, await execute(gql, pipelines["missing/dvc.yaml"]))
    assert failed["state"] == "FAILED", failed
    assert not (root / "missing/dvc.lock").exists() and not (oracle / "missing/dvc.lock").exists()
