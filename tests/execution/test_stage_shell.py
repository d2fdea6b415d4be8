"""The stage shell itself, both builds (compiled from stage_shell.c, and stage_shell.py): the same usage lines, exit
codes, limits and environment for a command, so that either can stand in for the other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workers.execution import shell


@pytest.fixture(params=["compiled", "python"])
def stage_shell(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / "stage-shell"
    if request.param == "compiled":
        assert shell._compile(path), "no C compiler: the compiled stage shell is not tested"
    else:
        shell._write_executable(path)
    return path


def run(stage_shell: Path, command: str, report: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": os.environ["PATH"], shell.RUSAGE_FILE_ENV: str(report), **env}
    return subprocess.run(
        [str(stage_shell), "-c", command], env=environment, capture_output=True, text=True, check=False, timeout=30
    )


def usage_lines(report: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in report.read_text().splitlines()]


def test_a_command_runs_under_sh_and_its_usage_is_reported(stage_shell: Path, tmp_path: Path) -> None:
    report = tmp_path / "usage.jsonl"
    result = run(stage_shell, 'echo "$SHELL"; printenv STAGE_RUSAGE_FILE || echo unset; echo err >&2', report)
    assert result.returncode == 0
    # The command sees /bin/sh as its shell and none of the wrapper's own variables.
    assert result.stdout == "/bin/sh\nunset\n" and result.stderr == "err\n"
    started, ended = usage_lines(report)
    assert set(started) == {"started"}
    assert set(ended) == {"started", "ended", "exit_code", "maxrss_kib", "utime", "stime"}
    assert ended["exit_code"] == 0 and ended["maxrss_kib"] > 0 and ended["ended"] >= ended["started"]
    assert shell.read_usage(report).commands_started == 1


def test_exit_codes_and_signals_come_back_as_a_shell_gives_them(stage_shell: Path, tmp_path: Path) -> None:
    report = tmp_path / "usage.jsonl"
    assert run(stage_shell, "exit 3", report).returncode == 3
    assert run(stage_shell, "kill -TERM $$", report).returncode == 128 + 15
    assert [line.get("exit_code") for line in usage_lines(report) if "exit_code" in line] == [3, 143]


def test_limits_apply_to_the_command(stage_shell: Path, tmp_path: Path) -> None:
    report = tmp_path / "usage.jsonl"
    result = run(stage_shell, "ulimit -n; ulimit -f", report, **{shell.LIMITS_ENV: "nofile=64,fsize=1024"})
    assert result.returncode == 0, result.stderr
    # ulimit -f counts 512-byte blocks.
    assert result.stdout.split() == ["64", "2"]
    assert run(stage_shell, "true", report, **{shell.LIMITS_ENV: "bogus=1"}).returncode == 127


def test_the_trampoline_marks_its_group_and_execs(stage_shell: Path) -> None:
    code = "import os; print(os.environ['STAGE_PROCESS_GROUP'] == str(os.getpgrp()))"
    result = subprocess.run(
        [str(stage_shell), "--exec", str(os.getpid()), sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0 and result.stdout == "True\n", result.stderr
    # A parent that is not ours: as if it died before the death signal was armed.
    gone = subprocess.run([str(stage_shell), "--exec", "1", "/bin/true"], check=False, timeout=30)
    assert gone.returncode == 128 + 9


def test_a_prebuilt_stage_shell_is_used_as_it_is(stage_shell: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(shell.STAGE_SHELL_BINARY_ENV, str(stage_shell))
    assert shell.stage_shell_path() == stage_shell
    monkeypatch.setenv(shell.STAGE_SHELL_BINARY_ENV, str(stage_shell.with_name("missing")))
    assert shell.stage_shell_path() != stage_shell.with_name("missing")
