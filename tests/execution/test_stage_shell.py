"""The stage shell itself (stage_shell.c, as shell.py builds it): usage lines, exit codes, limits, the sandbox prefix
and the environment of a command, and the group's take-down when DVC dies."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from launch_helpers import live_members

from workers.execution import shell


@pytest.fixture
def stage_shell(tmp_path: Path) -> Path:
    return shell.compile_stage_shell(tmp_path / "stage-shell")


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


def test_a_sandbox_prefix_runs_the_command_and_never_reaches_it(stage_shell: Path, tmp_path: Path) -> None:
    report = tmp_path / "usage.jsonl"
    show_argv = 'printf "%s|" "$0" "$@"; echo'
    prefix = shell.SANDBOX_ARGV_SEPARATOR.join(["/bin/sh", "-c", show_argv, "prefix"])
    result = run(stage_shell, "echo inner", report, **{shell.SANDBOX_ARGV_ENV: prefix})
    # The prefix is run with `/bin/sh -c CMD` appended, word for word.
    assert result.returncode == 0, result.stderr
    assert result.stdout == "prefix|/bin/sh|-c|echo inner|\n"
    prefix = shell.SANDBOX_ARGV_SEPARATOR.join(["/usr/bin/env", "SANDBOXED=yes"])
    result = run(
        stage_shell,
        "echo $SANDBOXED; printenv STAGE_SANDBOX_ARGV || echo unset",
        report,
        **{shell.SANDBOX_ARGV_ENV: prefix},
    )
    assert result.returncode == 0 and result.stdout == "yes\nunset\n", result.stderr
    # Measured as without a prefix.
    assert shell.read_usage(report).commands_started == 2
    assert [line["exit_code"] for line in usage_lines(report) if "exit_code" in line] == [0, 0]
    # A prefix that cannot run fails the command as a missing program does in a shell.
    missing = run(stage_shell, "true", report, **{shell.SANDBOX_ARGV_ENV: str(tmp_path / "no-such-sandbox")})
    assert missing.returncode == 127 and "no-such-sandbox" in missing.stderr


def test_init_mode_runs_its_program_passes_signals_on_and_refuses_bad_usage(stage_shell: Path) -> None:
    # `--init` is what the sandbox runs as its PID 1 (workers/sandbox/argv.py INIT); here outside any namespace.
    init = [str(stage_shell), "--init"]
    ran = subprocess.run([*init, "--", "/bin/sh", "-c", "echo ran; exit 4"], capture_output=True, text=True, timeout=30)
    assert (ran.returncode, ran.stdout) == (4, "ran\n")
    for bad in ([], ["/bin/true"], ["--uid=0", "--", "/bin/true"], ["--uid=x", "--", "/bin/true"], ["--"]):
        refused = subprocess.run([*init, *bad], capture_output=True, text=True, timeout=30)
        assert refused.returncode == 2 and "stage-shell" in refused.stderr, (bad, refused)
    # A SIGTERM to PID 1 (a stop reaching the stage's group) goes on to the command, which handles it.
    trapping = 'trap "echo got; exit 9" TERM; echo ready; while :; do sleep 0.05; done'
    with subprocess.Popen([*init, "--", "/bin/sh", "-c", trapping], stdout=subprocess.PIPE, text=True) as pid_1:
        assert pid_1.stdout is not None and pid_1.stdout.readline() == "ready\n"
        pid_1.send_signal(signal.SIGTERM)
        assert pid_1.wait(timeout=30) == 9
        assert pid_1.stdout.read() == "got\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
def test_init_mode_drops_to_the_given_user_for_good(stage_shell: Path) -> None:
    show = "id -u; id -g; id -G; grep -E '^(CapBnd|CapEff|NoNewPrivs)' /proc/self/status"
    result = subprocess.run(
        [str(stage_shell), "--init", "--uid=65534", "--", "/bin/sh", "-c", show],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == ["65534", "65534", "65534"]
    assert [line.split() for line in lines[3:]] == [
        ["CapEff:", "0000000000000000"],
        ["CapBnd:", "0000000000000000"],
        ["NoNewPrivs:", "1"],
    ]


GROUP_LEADER = """
import os, subprocess, sys
os.environ["STAGE_PROCESS_GROUP"] = str(os.getpgrp())
subprocess.Popen([sys.argv[1], "-c", "sleep 60 & echo started; sleep 60"])
sys.stdin.read()
"""


def test_the_group_goes_down_when_its_leader_dies(stage_shell: Path) -> None:
    # The leader stands for the stage's DVC process: a SIGKILL to it takes the command and its children down.
    with subprocess.Popen(
        [sys.executable, "-c", GROUP_LEADER, str(stage_shell)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as leader:
        try:
            assert leader.stdout is not None and leader.stdout.readline() == "started\n"
            assert len(live_members(leader.pid)) >= 4  # leader, stage shell, /bin/sh, the sleeps
            leader.kill()
            leader.wait(timeout=10)
            deadline = time.monotonic() + 5
            while live_members(leader.pid):
                assert time.monotonic() < deadline, f"group {leader.pid} still runs: {live_members(leader.pid)}"
                time.sleep(0.02)  # polling interval of a deadline-bounded wait
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(leader.pid, signal.SIGKILL)


def test_a_prebuilt_stage_shell_is_used_as_it_is(stage_shell: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(shell.STAGE_SHELL_BINARY_ENV, str(stage_shell))
    assert shell.stage_shell_path() == stage_shell
    monkeypatch.setenv(shell.STAGE_SHELL_BINARY_ENV, str(stage_shell.with_name("missing")))
    with pytest.raises(shell.StageShellError, match="missing"):
        shell.stage_shell_path()
