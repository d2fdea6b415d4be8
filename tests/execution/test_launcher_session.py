"""A run's stage session: its stages forked from one opened Repo, with the CLI's results.

The launcher tests in test_launcher_runs.py and test_launcher_stop.py run each stage from a session of its own too;
these cover what only a session shared by a run's stages shows: a chain whose later stages see what earlier ones
wrote, independent stages side by side, stages of any pipeline file of the workspace, and the session's end.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
import yaml
from launch_helpers import (
    PIPELINE,
    Collected,
    group_gone,
    make_workspace,
    opened,
    parent_of,
    read_lock,
    run_cli,
    target,
    until,
)

from workers.execution import StageServerError, StageSession, launch_stage

CHAIN = {
    "first": {"cmd": "tr a-z A-Z < in.txt > first.txt", "deps": ["in.txt"], "outs": ["first.txt"]},
    "second": {"cmd": "cat first.txt first.txt > second.txt", "deps": ["first.txt"], "outs": ["second.txt"]},
    "third": {"cmd": "wc -l < second.txt > third.txt", "deps": ["second.txt"], "outs": ["third.txt"]},
}


async def run_in(session: StageSession, root: Path, name: str, *, force: bool = False) -> tuple[int, bool, str]:
    output = Collected()
    process = await launch_stage(root, target(name), force=force, on_output=output, session=session)
    assert parent_of(process.pid) == session.pid
    result = await process.wait()
    return result.exit_code, result.command_ran, output.text


async def test_a_chain_in_one_session_leaves_what_dvc_repro_leaves(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws", CHAIN, {"in.txt": "abc\n"})
    oracle = tmp_path / "oracle"
    shutil.copytree(root, oracle, symlinks=True)
    run_cli(oracle, "repro", PIPELINE)

    session = await opened(root)
    try:
        for name in CHAIN:
            code, ran, text = await run_in(session, root, name)
            # Each later stage saw its input as the stage before it had just written it, not as the session read it.
            assert code == 0 and ran, text
    finally:
        session.close()
    assert read_lock(root) == read_lock(oracle)
    for name in ("first.txt", "second.txt", "third.txt"):
        assert (root / name).read_text() == (oracle / name).read_text()
    assert (root / "third.txt").read_text().strip() == "2"

    # The next run's session reads the new dvc.lock: nothing changed, every stage is skipped.
    session = await opened(root)
    try:
        for name in CHAIN:
            code, ran, text = await run_in(session, root, name)
            assert code == 0 and not ran, text
            assert f"Stage '{target(name)}' didn't change, skipping" in text
    finally:
        session.close()

    # An edited input re-runs the first stage; its output is the same as before, so, as in `dvc repro`, the rest is
    # skipped.
    (root / "in.txt").write_text("ABC\n")
    (oracle / "in.txt").write_text("ABC\n")
    run_cli(oracle, "repro", PIPELINE)
    session = await opened(root)
    try:
        assert [(await run_in(session, root, name))[1] for name in CHAIN] == [True, False, False]
    finally:
        session.close()
    assert read_lock(root) == read_lock(oracle)


async def test_independent_stages_of_one_session_overlap(tmp_path: Path) -> None:
    stages = {
        name: {
            "cmd": f"date +%s.%N > {name}.start; sleep 1.5; cp {name}.in {name}.out; date +%s.%N > {name}.end",
            "deps": [f"{name}.in"],
            "outs": [f"{name}.out"],
        }
        for name in ("left", "right")
    }
    root = make_workspace(tmp_path / "ws", stages, {"left.in": "l\n", "right.in": "r\n"})
    oracle = tmp_path / "oracle"
    shutil.copytree(root, oracle, symlinks=True)
    oracle_run = asyncio.create_task(asyncio.to_thread(run_cli, oracle, "repro", PIPELINE))
    session = await opened(root)
    try:
        results = await asyncio.gather(*(run_in(session, root, name) for name in stages))
    finally:
        session.close()
    await oracle_run
    assert all(code == 0 and ran for code, ran, _ in results), results
    spans = [(float((root / f"{n}.start").read_text()), float((root / f"{n}.end").read_text())) for n in stages]
    assert min(end for _, end in spans) - max(start for start, _ in spans) > 1.0, spans
    assert read_lock(root) == read_lock(oracle)


async def test_stages_of_two_pipeline_files_run_from_one_session(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws", {"a": {"cmd": "echo a > a.txt", "outs": ["a.txt"]}})
    other = root / "pipelines" / "other" / "dvc.yaml"
    other.parent.mkdir(parents=True)
    other.write_text(
        yaml.safe_dump(
            {"stages": {"b": {"cmd": "cat a.txt > b.txt", "deps": ["a.txt"], "outs": ["b.txt"], "wdir": "../.."}}}
        )
    )
    session = await opened(root)
    try:
        assert (await run_in(session, root, "a"))[:2] == (0, True)
        output = Collected()
        process = await launch_stage(root, "pipelines/other/dvc.yaml:b", force=False, on_output=output, session=session)
        result = await process.wait()
    finally:
        session.close()
    assert result.exit_code == 0 and result.command_ran, output.text
    assert (root / "b.txt").read_text() == "a\n"
    assert "b" in yaml.safe_load(other.with_name("dvc.lock").read_text())["stages"]


async def test_a_stage_of_an_unreadable_pipeline_file_fails_with_dvcs_message(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws", {"a": {"cmd": "echo a"}})
    (root / PIPELINE).write_text("stages: [not, a, mapping\n")
    session = await opened(root)
    try:
        output = Collected()
        result = await (await launch_stage(root, target("a"), force=False, on_output=output, session=session)).wait()
    finally:
        session.close()
    # DVC reads the file when the stage is reproduced, and says what is wrong, as its CLI does.
    assert result.exit_code != 0 and not result.command_ran
    assert "pipelines/exec/dvc.yaml' is invalid" in output.text


async def test_a_session_on_a_folder_that_is_not_a_dvc_workspace_is_refused(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(StageServerError, match="NotDvcRepoError"):
        await opened(tmp_path / "plain")


async def test_closing_a_session_ends_the_stages_it_still_runs(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws", {"slow": {"cmd": "echo started; sleep 60"}})
    session = await opened(root)
    output = Collected()
    process = await launch_stage(root, target("slow"), force=False, on_output=output, session=session)
    await until(lambda: "started" in output.text.splitlines(), 20, "the stage's first line")
    session.close()
    async with asyncio.timeout(10):
        result = await process.wait()
    assert result.exit_code != 0
    await until(lambda: group_gone(process.pid), 5, "the stage's group gone")
