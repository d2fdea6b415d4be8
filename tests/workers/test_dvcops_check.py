"""check_pipeline: one test per check; every call also asserts the workspace is byte-for-byte unchanged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import CHAIN, chain_stages, checked

from app.domain.errors import Issue
from app.domain.pipelines import StageSpec
from workers.dvcops import write_pipeline

NEW = "pipelines/new/dvc.yaml"


def stage(name: str = "s", **fields: Any) -> StageSpec:
    return StageSpec(name=name, cmd=fields.pop("cmd", "echo hi > out.txt"), **fields)


def paths_of(issues: list[Issue]) -> list[tuple[str, str | None]]:
    return [(issue.path, issue.stage) for issue in issues]


def test_valid_stages_have_no_issues(make_workspace: Callable[[], Path]) -> None:
    assert checked(make_workspace(), CHAIN, chain_stages()) == []


def test_rechecking_a_written_pipeline_does_not_clash_with_itself(ran_chain: Path) -> None:
    assert checked(ran_chain, CHAIN, chain_stages()) == []


def test_empty_stage_set(make_workspace: Callable[[], Path]) -> None:
    assert paths_of(checked(make_workspace(), NEW, [])) == [("stages", None)]


def test_empty_name(make_workspace: Callable[[], Path]) -> None:
    issues = checked(make_workspace(), NEW, [stage(""), stage("ok", cmd="echo > b.txt", outs=["b.txt"])])
    assert paths_of(issues) == [("stages[0].name", None)]
    assert "empty" in issues[0].message


def test_duplicate_name_blames_the_later_stage(make_workspace: Callable[[], Path]) -> None:
    issues = checked(make_workspace(), NEW, [stage("a", outs=["a.txt"]), stage("a", outs=["b.txt"])])
    assert paths_of(issues) == [("stages[1].name", "a")]


def test_name_dvc_rejects(make_workspace: Callable[[], Path]) -> None:
    issues = checked(make_workspace(), NEW, [stage("train/v2")])
    assert paths_of(issues) == [("stages[0].name", "train/v2")]


def test_blank_command(make_workspace: Callable[[], Path]) -> None:
    issues = checked(make_workspace(), NEW, [stage("a", cmd="   ")])
    assert paths_of(issues) == [("stages[0].cmd", "a")]


def test_absolute_path(make_workspace: Callable[[], Path]) -> None:
    issues = checked(make_workspace(), NEW, [stage("a", outs=["/etc/passwd"])])
    assert paths_of(issues) == [("stages[0].outs[0]", "a")]
    assert "absolute" in issues[0].message


def test_path_leaving_the_workspace(make_workspace: Callable[[], Path]) -> None:
    issues = checked(make_workspace(), NEW, [stage("a", deps=["data/../../secret.csv"])])
    assert paths_of(issues) == [("stages[0].deps[0]", "a")]
    assert "leaves the workspace" in issues[0].message


def test_path_through_a_symlink_out_of_the_workspace(tmp_path: Path, make_workspace: Callable[[], Path]) -> None:
    root = make_workspace()
    (tmp_path / "elsewhere").mkdir()
    (root / "shared").symlink_to(tmp_path / "elsewhere")
    issues = checked(root, NEW, [stage("a", outs=["shared/model.pkl"])])
    assert paths_of(issues) == [("stages[0].outs[0]", "a")]
    assert "symlink" in issues[0].message


def test_paths_into_git_and_dvc_folders(make_workspace: Callable[[], Path]) -> None:
    issues = checked(make_workspace(), NEW, [stage("a", outs=[".git/hooks/pre-commit"], metrics=[".dvc/m.json"])])
    assert paths_of(issues) == [("stages[0].outs[0]", "a"), ("stages[0].metrics[0]", "a")]


def test_params_file_missing(make_workspace: Callable[[], Path]) -> None:
    issues = checked(make_workspace(), NEW, [stage("a", params=["config/absent.yaml:lr"])])
    assert paths_of(issues) == [("stages[0].params[0]", "a")]
    assert "does not exist" in issues[0].message


def test_params_key_missing_in_default_and_other_file(make_workspace: Callable[[], Path]) -> None:
    spec = stage(
        "a", params=["train.lr", "train.epochs", "config/train.yaml:model.depth", "config/train.yaml:model.width"]
    )
    issues = checked(make_workspace(), NEW, [spec])
    assert paths_of(issues) == [("stages[0].params[1]", "a"), ("stages[0].params[3]", "a")]
    assert "'model.width'" in issues[1].message


def test_wdir_outside_the_workspace(make_workspace: Callable[[], Path]) -> None:
    issues = checked(make_workspace(), NEW, [stage("a", wdir="../other-project")])
    assert paths_of(issues) == [("stages[0].wdir", "a")]


def test_dependency_cycle_is_reported_on_each_stage_of_it(make_workspace: Callable[[], Path]) -> None:
    stages = [
        stage("ok", cmd="echo > c.txt", outs=["c.txt"]),
        stage("a", cmd="cp y.txt x.txt", deps=["y.txt"], outs=["x.txt"]),
        stage("b", cmd="cp x.txt y.txt", deps=["x.txt"], outs=["y.txt"]),
    ]
    issues = checked(make_workspace(), NEW, stages)
    assert sorted(paths_of(issues)) == [("stages[1].deps[0]", "a"), ("stages[2].deps[0]", "b")]
    assert "cycle" in issues[0].message


def test_output_that_is_also_a_dependency_of_the_same_stage(make_workspace: Callable[[], Path]) -> None:
    issues = checked(make_workspace(), NEW, [stage("a", deps=["out.txt"], outs=["out.txt"])])
    assert paths_of(issues) == [("stages[0].outs[0]", "a")]


def test_two_stages_with_the_same_output(make_workspace: Callable[[], Path]) -> None:
    issues = checked(make_workspace(), NEW, [stage("a", outs=["out.txt"]), stage("b", metrics=["out.txt"])])
    assert paths_of(issues) == [("stages[1].metrics[0]", "b")]


def test_output_inside_another_output(make_workspace: Callable[[], Path]) -> None:
    stages = [stage("a", cmd="mkdir -p data", outs=["data"]), stage("b", outs=["data/part.csv"])]
    issues = checked(make_workspace(), NEW, stages)
    assert paths_of(issues) == [("stages[1].outs[0]", "b")]
    assert "inside" in issues[0].message


def test_same_output_as_a_stage_of_another_pipeline(ran_chain: Path) -> None:
    issues = checked(ran_chain, NEW, [stage("copy", cmd="echo > model.txt", outs=["model.txt"])])
    assert paths_of(issues) == [("stages[0].outs[0]", "copy")]
    assert "'train' of pipelines/chain/dvc.yaml" in issues[0].message


def test_output_containing_an_output_of_another_pipeline(make_workspace: Callable[[], Path]) -> None:
    root = make_workspace()
    write_pipeline(root, "pipelines/features/dvc.yaml", [stage("f", cmd="x", outs=["features/a.csv"])])
    issues = checked(root, NEW, [stage("all", cmd="y", outs=["features"])])
    assert paths_of(issues) == [("stages[0].outs[0]", "all")]
    assert "contains" in issues[0].message


def test_what_dvc_schema_rejects(make_workspace: Callable[[], Path]) -> None:
    # StageSpec does not check types at runtime; DVC's schema (dvc/schema.py) does.
    issues = checked(make_workspace(), NEW, [stage("a", deps=[{"not": "a path"}])])
    assert paths_of(issues) == [("stages[0].deps[0]", "a")]
    assert "DVC rejects" in issues[0].message


def test_what_dvc_loader_rejects(make_workspace: Callable[[], Path]) -> None:
    # DVC interpolates ${...} in dvc.yaml; an unknown variable fails when DVC loads the stage.
    issues = checked(make_workspace(), NEW, [stage("a", cmd="echo ${undefined_var} > out.txt")])
    assert paths_of(issues) == [("stages[0]", "a")]
    assert "undefined_var" in issues[0].message


def test_only_the_faulty_stages_are_reported(make_workspace: Callable[[], Path]) -> None:
    stages = [*chain_stages(), stage("bad", cmd="", outs=["model.txt"]), stage("dup", outs=["prepared.csv"])]
    issues = checked(make_workspace(), CHAIN, stages)
    assert paths_of(issues) == [("stages[3].cmd", "bad"), ("stages[4].outs[0]", "dup")]
