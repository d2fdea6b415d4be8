"""write_pipeline / read_pipeline / remove_pipeline against real files and DVC's own reading."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml
from conftest import CHAIN, chain_stages, run_dvc

from app.domain.pipelines import StageSpec
from workers.dvcops import read_pipeline, remove_pipeline, write_pipeline


def test_round_trip_with_wdir_params_metrics_and_plots(make_workspace: Callable[[], Path]) -> None:
    root = make_workspace()
    stages = [
        StageSpec(
            name="train",
            cmd="python train.py",
            deps=["data.csv"],
            outs=["model.pkl"],
            params=["train.lr", "config/train.yaml:model.depth", "config/train.yaml:lr"],
            metrics=["metrics.json"],
            plots=["loss.csv"],
            description="fit the model",
            frozen=True,
            always_changed=True,
        ),
        StageSpec(name="local", cmd="echo > out.txt", outs=["out.txt"], wdir="pipelines/p"),
        StageSpec(name="sub", cmd="echo > out.txt", outs=["out.txt"], wdir="config"),
    ]

    write_pipeline(root, "pipelines/p/dvc.yaml", stages)

    written = yaml.safe_load((root / "pipelines/p/dvc.yaml").read_text())["stages"]
    assert written["train"] == {
        "cmd": "python train.py",
        "wdir": "../..",
        "deps": ["data.csv"],
        "params": ["train.lr", {"config/train.yaml": ["model.depth", "lr"]}],
        "outs": ["model.pkl"],
        "metrics": [{"metrics.json": {"cache": False}}],
        "plots": [{"loss.csv": {"cache": False}}],
        "desc": "fit the model",
        "frozen": True,
        "always_changed": True,
    }
    assert "wdir" not in written["local"]
    assert written["sub"]["wdir"] == "../../config"
    assert read_pipeline(root, "pipelines/p/dvc.yaml") == stages
    # DVC's CLI loads the file too (params in another file included).
    listed = run_dvc(root, "stage", "list", "--all", "--name-only").split()
    assert listed == ["pipelines/p/dvc.yaml:train", "pipelines/p/dvc.yaml:local", "pipelines/p/dvc.yaml:sub"]


def test_removed_stages_leave_the_lock_file(ran_chain: Path) -> None:
    lock = ran_chain / "pipelines/chain/dvc.lock"
    assert set(yaml.safe_load(lock.read_text())["stages"]) == {"prepare", "train", "evaluate"}

    write_pipeline(ran_chain, CHAIN, chain_stages()[:2])

    assert set(yaml.safe_load(lock.read_text())["stages"]) == {"prepare", "train"}
    assert "evaluate" not in run_dvc(ran_chain, "status", CHAIN)

    write_pipeline(ran_chain, CHAIN, [])

    assert not lock.exists()


def test_remove_pipeline_keeps_outputs(ran_chain: Path) -> None:
    removed = remove_pipeline(ran_chain, CHAIN)

    assert removed == ["prepare", "train", "evaluate"]
    assert not (ran_chain / "pipelines/chain").exists()
    assert (ran_chain / "model.txt").is_file()
    # As `dvc remove` without --outs: outputs are no longer git-ignored (.gitignore went with its last line).
    gitignore = ran_chain / ".gitignore"
    assert not gitignore.exists() or "model.txt" not in gitignore.read_text()
