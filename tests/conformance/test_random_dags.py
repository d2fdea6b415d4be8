"""Property: for random DAGs of 2-12 stages over 1-3 dvc.yaml files, with random edits between runs, every run
(and the status before it, and its dry-run plan) agrees with `dvc repro` on a copy of the workspace.

Stages may consume outputs of stages in other dvc.yaml files (the cross-pipeline case). Edits are what users do
between runs: change a source file or a param through writeFile, or a stage's command through updatePipeline.
`make test` runs a few examples (no shrinking: each example clones a project and runs it several times);
CONFORMANCE_EXAMPLES=<n> runs more, with fresh randomness, for longer local runs.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conformance import service
from tests.conformance.conftest import Reports
from tests.conformance.repos import Shape
from tests.conformance.scenario import Exercise, Report, setup_exercise

EXAMPLES = int(os.environ.get("CONFORMANCE_EXAMPLES", "3"))
FILES = ("dvc.yaml", "p1/dvc.yaml", "p2/dvc.yaml")
SOURCES = ("src0.txt", "src1.txt")
PER_EXAMPLE_SECONDS = 150


@dataclass(frozen=True)
class Round:
    edit: tuple[Any, ...]
    """("none",), ("source", file, text), ("param", stage, value) or ("command", stage)."""
    pipeline: str
    options: dict[str, Any]


@dataclass(frozen=True)
class Example:
    shape: Shape
    stage_file: dict[str, str]
    """Stage name -> its dvc.yaml."""
    rounds: list[Round]


def stage_entry(index: int, parents: list[int], sources: list[str], with_param: bool, in_subfolder: bool) -> Any:
    name = f"s{index}"
    inputs = [f"s{p}.txt" for p in parents] + sources
    command = (
        f"cat {' '.join(inputs)} > {name}.txt && echo {name} >> {name}.txt" if inputs else f"echo {name} > {name}.txt"
    )
    entry: dict[str, Any] = {"cmd": command}
    if in_subfolder:
        entry["wdir"] = ".."  # every stage works from the project root, as API-written stages do
    if inputs:
        entry["deps"] = inputs
    if with_param:
        entry["cmd"] += f" && grep '^k{index}:' params.yaml >> {name}.txt"
        entry["params"] = [f"k{index}"]
    entry["outs"] = [f"{name}.txt"]
    return entry


@st.composite
def examples(draw: st.DrawFn) -> Example:
    count = draw(st.integers(min_value=2, max_value=12))
    file_count = draw(st.integers(min_value=1, max_value=3))
    placed = [draw(st.integers(min_value=0, max_value=file_count - 1)) for _ in range(count)]
    used = sorted(set(placed))
    file_of = {i: FILES[used.index(placed[i])] for i in range(count)}
    pipelines: dict[str, dict[str, Any]] = {FILES[used.index(f)]: {} for f in used}
    for index in range(count):
        parents = (
            draw(st.lists(st.integers(min_value=0, max_value=index - 1), max_size=3, unique=True)) if index else []
        )
        sources = draw(st.lists(st.sampled_from(SOURCES), max_size=1))
        with_param = draw(st.booleans())
        file = file_of[index]
        pipelines[file][f"s{index}"] = stage_entry(index, sorted(parents), sources, with_param, file != "dvc.yaml")
    files: dict[str, Any] = {path: {"stages": stages} for path, stages in pipelines.items()}
    files["params.yaml"] = {f"k{i}": 1 for i in range(count)}
    files.update({source: f"{source}\n" for source in SOURCES})
    stage_file = {f"s{i}": file_of[i] for i in range(count)}

    rounds: list[Round] = []
    for number in range(draw(st.integers(min_value=1, max_value=3))):
        kind = draw(st.sampled_from(["none", "source", "param", "command"]))
        stage = draw(st.sampled_from(sorted(stage_file)))
        edit: tuple[Any, ...]
        if kind == "source":
            edit = ("source", draw(st.sampled_from(SOURCES)), f"edited in round {number}\n")
        elif kind == "param":
            edit = ("param", stage, number + 2)
        elif kind == "command":
            edit = ("command", stage)
        else:
            edit = ("none",)
        pipeline = draw(st.sampled_from(sorted(pipelines)))
        own = sorted(name for name, file in stage_file.items() if file == pipeline)
        target = draw(st.sampled_from(own))
        options = draw(
            st.sampled_from(
                [
                    {},
                    {"targets": [target]},
                    {"targets": [target], "downstream": True},
                    {"targets": [target], "singleItem": True},
                    {"force": True},
                ]
            )
        )
        rounds.append(Round(edit, pipeline, options))
    shape = Shape(name=f"random-{uuid.uuid4().hex[:6]}", files=files, main=sorted(pipelines)[0])
    return Example(shape, stage_file, rounds)


async def apply_edit(exercise: Exercise, example: Example, edit: tuple[Any, ...], number: int) -> None:
    gql, project = exercise.gql, exercise.project_id
    if edit[0] == "source":
        await service.write_file(gql, project, edit[1], edit[2])
    elif edit[0] == "param":
        values = {f"k{i}": 1 for i in range(len(example.stage_file))} | {f"k{edit[1][1:]}": edit[2]}
        await service.write_file(gql, project, "params.yaml", "".join(f"{k}: {v}\n" for k, v in values.items()))
    elif edit[0] == "command":
        pipeline = exercise.listed[example.stage_file[edit[1]]]
        stages = [
            {
                "name": s["name"],
                "command": s["command"] + (f" && echo edit{number} >> {s['name']}.txt" if s["name"] == edit[1] else ""),
                "deps": s["deps"],
                "outs": s["outs"],
                "params": s["params"],
                "metrics": s["metrics"],
                "plots": s["plots"],
                "frozen": s["frozen"],
            }
            for s in pipeline["stages"]
        ]
        await service.update_stages(gql, pipeline, stages)
        await exercise.refresh()
        copy = exercise.copy()
        exercise.check_listing(copy, f"round {number}: after updatePipeline")
        await exercise.check_dag(copy, f"round {number}: after updatePipeline")


RANDOM = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="CONFORMANCE_EXAMPLES" not in os.environ,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.mark.timeout(PER_EXAMPLE_SECONDS * (EXAMPLES + 1))
@RANDOM
@given(example=examples())
async def test_random_dags_and_edits_run_as_dvc_repro_runs_them(reports: Reports, example: Example) -> None:
    report = Report(example.shape.name)
    user = await reports.new_user()
    exercise = await setup_exercise(
        example.shape, report, user, reports.oracle, reports.workspaces, reports.scratch / example.shape.name
    )
    if exercise is not None:
        await exercise.check_run("run", "first run", {}, pipeline_path=example.shape.main, edits={})
        for number, round_ in enumerate(example.rounds):
            label = f"round {number}: {round_.edit[0]} edit, run {round_.pipeline} with {round_.options}"
            with report.check("options", label):
                await apply_edit(exercise, example, round_.edit, number)
            await exercise.check_run("options", label, round_.options, pipeline_path=round_.pipeline, edits={})
    problems = [report.blocked] if report.blocked else []
    problems += [str(report.outcome(check)) for check in sorted(report.reached) if report.failures[check]]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)  # the example itself is printed by hypothesis
