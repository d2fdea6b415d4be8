"""The oracle answers as the `dvc` command line does: same stage list, same status, same stages run, same files.

The oracle calls the Repo methods the CLI commands call, in one long-lived process; these tests hold it to the
CLI itself on copies of one repository, so a DVC upgrade that changed either side would show here first.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conformance.compare import dvc_address, snapshot, tree
from tests.conformance.oracle import Oracle
from tests.conformance.repos import Shape, build_repository
from tests.conformance.shapes import cross_pipeline, failing_stage, foreach_list

DVC = str(Path(sys.executable).with_name("dvc"))


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    return subprocess.run([DVC, *args], cwd=root, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("make", [foreach_list, cross_pipeline, failing_stage], ids=lambda m: m.__name__)
def test_the_oracle_answers_as_the_dvc_cli(oracle: Oracle, tmp_path: Path, make: Callable[[], Shape]) -> None:
    shape = make()
    source = build_repository(shape, tmp_path / "source", oracle)
    ours, theirs = snapshot(source, tmp_path / "ours"), snapshot(source, tmp_path / "theirs")
    shutil.rmtree(source)

    listed = cli(theirs, "stage", "list", "--all", "--name-only")
    assert listed.returncode == 0, listed.stderr
    assert sorted(dvc_address(r["address"]) for r in oracle.stages(ours)) == sorted(
        dvc_address(line.strip()) for line in listed.stdout.splitlines() if line.strip()
    )

    status = cli(theirs, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert oracle.status(ours) == json.loads(status.stdout)

    keep_going = shape.run_options.get("keepGoing", False)
    repro = oracle.repro(ours, targets=[shape.main], keep_going=keep_going)
    run = cli(theirs, "repro", *(["--keep-going"] if keep_going else []), shape.main)
    assert (run.returncode == 0) == (repro["error"] is None), (run.stderr, repro)
    assert sorted(repro["ran"]) == sorted(re.findall(r"^Running stage '([^']+)':", run.stdout, re.MULTILINE))
    assert tree(ours) == tree(theirs)
