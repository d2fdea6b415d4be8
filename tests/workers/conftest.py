"""Real workspaces (git + DVC on disk) for the dvcops tests; expensive setup is built once per session
and copied, so each test gets its own workspace without paying for `dvc init` or `dvc repro` again."""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from app.domain.errors import Issue
from app.domain.pipelines import StageSpec
from workers.dvcops import check_pipeline, init_workspace, write_pipeline

CHAIN = "pipelines/chain/dvc.yaml"
_copies = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    # DVC's build_graph/build_outs_trie read `.value` of pygtrie's empty step, which pygtrie
    # deprecates; our code cannot avoid it, so that one message, from those DVC modules, is ignored.
    config.addinivalue_line(
        "filterwarnings",
        r"ignore:_NoneStep\.value will soon raise AttributeError:DeprecationWarning:dvc\.repo\.(graph|trie)",
    )


def chain_stages() -> list[StageSpec]:
    """prepare -> train -> evaluate, working from the project root like every API pipeline."""
    return [
        StageSpec(name="prepare", cmd="cp data.csv prepared.csv", deps=["data.csv"], outs=["prepared.csv"]),
        StageSpec(
            name="train",
            cmd="cat prepared.csv > model.txt",
            deps=["prepared.csv"],
            outs=["model.txt"],
            params=["train.lr"],
        ),
        StageSpec(
            name="evaluate",
            cmd="wc -l model.txt > metrics.json",
            deps=["model.txt"],
            metrics=["metrics.json"],
        ),
    ]


def run_dvc(root: Path, *args: str) -> str:
    """The DVC CLI, as the oracle for what the library says."""
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def run_git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


def tree_digest(root: Path) -> str:
    """Everything under root, .git and .dvc included: paths, file bytes, modes and symlink targets."""
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted([*dirs, *files]):
            path = Path(folder) / name
            digest.update(str(path.relative_to(root)).encode())
            if path.is_symlink():
                digest.update(os.readlink(path).encode())
            elif path.is_file():
                digest.update(oct(path.stat().st_mode).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def checked(root: Path, pipeline_path: str, stages: list[StageSpec]) -> list[Issue]:
    """check_pipeline, asserting that it left the workspace exactly as it was."""
    before = tree_digest(root)
    issues = check_pipeline(root, pipeline_path, stages)
    assert tree_digest(root) == before
    return issues


def _copy(template: Path, tmp_path: Path) -> Path:
    target = tmp_path / f"ws{next(_copies)}"
    shutil.copytree(template, target, symlinks=True)
    return target


@pytest.fixture(scope="session")
def empty_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("templates") / "empty"
    init_workspace(root, None)
    (root / "data.csv").write_text("x,y\n1,2\n")
    (root / "params.yaml").write_text("train:\n  lr: 0.1\n")
    (root / "config").mkdir()
    (root / "config" / "train.yaml").write_text("lr: 0.01\nmodel:\n  depth: 3\n")
    return root


@pytest.fixture(scope="session")
def ran_chain_template(tmp_path_factory: pytest.TempPathFactory, empty_template: Path) -> Path:
    root = _copy(empty_template, tmp_path_factory.mktemp("templates"))
    write_pipeline(root, CHAIN, chain_stages())
    run_dvc(root, "repro", CHAIN)
    return root


@pytest.fixture
def make_workspace(tmp_path: Path, empty_template: Path) -> Callable[[], Path]:
    """A fresh workspace with data.csv, params.yaml and config/train.yaml, nothing else."""
    return lambda: _copy(empty_template, tmp_path)


@pytest.fixture
def ran_chain(tmp_path: Path, ran_chain_template: Path) -> Path:
    """A workspace whose chain pipeline has just been reproduced with `dvc repro`."""
    return _copy(ran_chain_template, tmp_path)
