"""The oracle of the launcher's DVC internals (dvc_internals.open_repo_to_fork, load_pipeline_stages, reproduce_loaded,
poll_repository_lock_every): a run's stages forked from one session leave what `dvc repro` leaves on a copy of the
workspace (dvc.lock, outputs, status, .gitignore), whether the session read their pipeline file (as a run's does) or
not (each stage through Repo.reproduce)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from launch_helpers import PIPELINE, Collected, make_workspace, opened, read_lock, run_cli, target

from workers.dvcops import dvc_internals
from workers.execution import launch_stage

# Two branches that queue for DVC's repository lock together, then a stage that needs both; one more stage that is
# restored from the run-cache the second time round.
STAGES = {
    "left": {"cmd": "tr a-z A-Z < in.txt > left.txt", "deps": ["in.txt"], "outs": ["left.txt"]},
    "right": {"cmd": "rev < in.txt > right.txt", "deps": ["in.txt"], "outs": ["right.txt"]},
    "join": {
        "cmd": "cat left.txt right.txt > join.txt",
        "deps": ["left.txt", "right.txt"],
        "outs": ["join.txt"],
        "metrics": [{"score.json": {"cache": False}}],
    },
}
STAGES["join"]["cmd"] += " && echo '{\"lines\": 2}' > score.json"
OUTPUTS = ("left.txt", "right.txt", "join.txt", "score.json")


async def run_pipeline(root: Path, files: tuple[str, ...]) -> list[bool]:
    """The stages as a run runs them (branches side by side, then the join), from one session; whether each ran."""
    session = await opened(root, files)
    try:

        async def one(name: str) -> bool:
            output = Collected()
            process = await launch_stage(root, target(name), force=False, on_output=output, session=session)
            result = await process.wait()
            assert result.exit_code == 0, output.text
            return result.command_ran

        branches = await asyncio.gather(one("left"), one("right"))
        return [*branches, await one("join")]
    finally:
        session.close()


def assert_same_as_cli(root: Path, oracle: Path) -> None:
    assert read_lock(root) == read_lock(oracle)
    for name in OUTPUTS:
        assert (root / name).read_text() == (oracle / name).read_text(), name
    assert run_cli(root, "status", PIPELINE) == run_cli(oracle, "status", PIPELINE)
    # The same entries; their order follows which branch finished first.
    assert sorted((root / ".gitignore").read_text().splitlines()) == sorted(
        (oracle / ".gitignore").read_text().splitlines()
    )


@pytest.mark.parametrize("files", [(PIPELINE,), ()], ids=["pipeline-read-once", "read-per-stage"])
async def test_a_run_leaves_what_dvc_repro_leaves(tmp_path: Path, files: tuple[str, ...]) -> None:
    assert dvc_internals.checked(), f"DVC {dvc_internals.dvc_version()} is not the {dvc_internals.CHECKED_DVC_MAJOR}.x"
    root = make_workspace(tmp_path / "ws", STAGES, {"in.txt": "abc\n"})
    oracle = tmp_path / "oracle"
    shutil.copytree(root, oracle, symlinks=True)

    run_cli(oracle, "repro", PIPELINE)
    assert await run_pipeline(root, files) == [True, True, True]
    assert_same_as_cli(root, oracle)

    # Nothing changed: nothing runs, as with the CLI.
    assert await run_pipeline(root, files) == [False, False, False]
    assert_same_as_cli(root, oracle)

    # A changed input, and back: the second time the stages come from the run-cache, their commands do not run.
    for text in ("xyz\n", "abc\n"):
        for workspace in (root, oracle):
            (workspace / "in.txt").write_text(text)
        run_cli(oracle, "repro", PIPELINE)
        ran = await run_pipeline(root, files)
        assert_same_as_cli(root, oracle)
    assert ran == [False, False, False]
