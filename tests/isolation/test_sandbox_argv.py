"""The sandbox's pieces without the stack: the bwrap argv builder, the stage-shell contract (STAGE_SANDBOX_ARGV) in
the stage shell, the workspace ACLs, and what a real sandbox does to measurement, exit codes and processes."""

from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path

import pytest

from workers.execution import shell
from workers.sandbox import SANDBOX_ARGV_ENV, SEPARATOR, encode
from workers.sandbox.access import ACCESS, DEFAULT, acl, grant_tree
from workers.sandbox.argv import HOME, SandboxSpec, build_argv
from workers.sandbox.capability import probe, root_links
from workers.sandbox.policy import SERVICE_VARIABLES, _base_interpreter_home

MiB = 1024 * 1024


def pairs(argv: list[str], option: str) -> list[tuple[str, str]]:
    """Every ``option A B`` in ``argv``."""
    return [(argv[i + 1], argv[i + 2]) for i, arg in enumerate(argv) if arg == option]


def test_as_root_bwrap_mounts_and_the_stage_shells_pid_1_drops_to_the_unprivileged_user() -> None:
    argv = build_argv(SandboxSpec(workspace=Path("/srv/ws/p1"), uid=65534, root_links=[("/bin", "usr/bin")]))

    assert argv[0] == "/usr/bin/bwrap"
    # No user namespace mapping the worker (root) into the sandbox: PID 1 (the stage shell, handed over as fd 3) makes
    # the command a real uid 65534 (what it is left with: test_the_command_is_a_real_unprivileged_user_...).
    assert "--unshare-user" not in argv
    separator = argv.index("--")
    inner = argv[separator + 1 :]
    assert inner == ["/proc/self/fd/3", "--init", "--uid=65534", "--"]
    options = argv[:separator]
    for flag in ("--unshare-pid", "--unshare-net", "--unshare-ipc", "--die-with-parent", "--as-pid-1"):
        assert flag in options, flag
    assert pairs(options, "--bind") == [("/srv/ws/p1", "/srv/ws/p1")]
    assert pairs(options, "--ro-bind-try") == [("/srv/ws/p1/.git",) * 2, ("/srv/ws/p1/.dvc",) * 2]
    assert ("/usr", "/usr") in pairs(options, "--ro-bind") and ("/etc", "/etc") in pairs(options, "--ro-bind")
    assert ("usr/bin", "/bin") in pairs(options, "--symlink")
    # The root bwrap builds is read-only once built; the workspace's parents exist (searchable) and nothing else.
    assert options[options.index("--remount-ro") + 1] == "/"
    assert [argv[i + 1] for i, a in enumerate(options) if a == "--dir"] == ["/var", "/srv", "/srv/ws"]
    env = dict(pairs(options, "--setenv"))
    assert env == {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": HOME, "TMPDIR": "/tmp"}


def test_without_root_bwrap_takes_a_user_namespace_of_the_workers_own_user() -> None:
    argv = build_argv(SandboxSpec(workspace=Path("/srv/ws/p1"), uid=None))

    assert "--unshare-user" in argv and "--disable-userns" in argv
    assert argv[argv.index("--") + 1 :] == ["/proc/self/fd/3", "--init", "--"]


def test_the_private_tmp_is_mounted_before_a_workspace_under_tmp() -> None:
    argv = build_argv(SandboxSpec(workspace=Path("/tmp/x/ws"), uid=65534))

    tmpfs = argv.index("/tmp", argv.index("--tmpfs"))
    assert tmpfs < argv.index("--bind")
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--dir"] == ["/var", "/tmp/x"]


def test_var_tmp_is_the_private_tmp_unless_a_mount_lives_under_it() -> None:
    # DVC (a project's own dvclive imports it) keeps its site cache in /var/tmp/dvc.
    argv = build_argv(SandboxSpec(workspace=Path("/srv/ws/p1"), uid=65534))
    assert ("/tmp", "/var/tmp") in pairs(argv, "--symlink")
    assert argv.index("/var", argv.index("--dir")) < argv.index("/var/tmp")
    under = build_argv(SandboxSpec(workspace=Path("/var/tmp/ws/p1"), uid=65534))
    assert ("/tmp", "/var/tmp") not in pairs(under, "--symlink")


def test_a_python_environment_is_read_only_and_first_on_path(tmp_path: Path) -> None:
    venv = tmp_path / "env"
    venv.mkdir()
    (venv / "pyvenv.cfg").write_text("home = /opt/python/3.12/bin\ninclude-system-site-packages = false\n")

    home = _base_interpreter_home(venv)
    argv = build_argv(SandboxSpec(workspace=Path("/srv/ws/p1"), python_env=venv, python_home=home, uid=65534))

    assert home == Path("/opt/python/3.12")
    assert (str(venv), str(venv)) in pairs(argv, "--ro-bind")
    assert ("/opt/python/3.12", "/opt/python/3.12") in pairs(argv, "--ro-bind")
    assert dict(pairs(argv, "--setenv"))["PATH"] == f"{venv}/bin:/usr/local/bin:/usr/bin:/bin"
    assert (str(venv), str(venv)) not in pairs(argv, "--bind")
    # The folders above each mount are made searchable for the sandbox's user (bwrap makes them 0700 otherwise, and
    # an interpreter under /root could not be run).
    made = [argv[i + 3] for i in range(len(argv) - 3) if argv[i : i + 3] == ["--perms", "0755", "--dir"]]
    assert {"/opt", "/opt/python", "/srv", "/srv/ws", *map(str, venv.parents)} - {"/", "/tmp"} <= set(made)


def test_an_interpreter_under_usr_needs_no_mount_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert _base_interpreter_home(tmp_path) is None
    assert _base_interpreter_home(None) is None


def test_the_services_settings_are_unset_inside() -> None:
    argv = build_argv(SandboxSpec(workspace=Path("/srv/ws/p1"), uid=65534, unset_variables=SERVICE_VARIABLES))

    unset = {argv[i + 1] for i, a in enumerate(argv) if a == "--unsetenv"}
    assert {"MONGODB_URL", "REDIS_URL", "WORKSPACE_ROOT", "PYTHONPATH"} <= unset


def test_a_relative_workspace_is_refused() -> None:
    with pytest.raises(ValueError, match="absolute"):
        build_argv(SandboxSpec(workspace=Path("ws"), uid=65534))


def test_the_prefix_travels_as_one_variable() -> None:
    prefix = ["/usr/bin/bwrap", "--bind", "/a b", "/a b", "--"]
    assert encode(prefix).split(SEPARATOR) == prefix
    with pytest.raises(ValueError):
        encode(["/usr/bin/bwrap", f"x{SEPARATOR}y"])


@pytest.fixture
def stage_shell(tmp_path: Path) -> Path:
    """The one stage shell, compiled as the worker compiles it."""
    return shell.compile_stage_shell(tmp_path / "stage-shell")


def run_shell(
    stage_shell: Path, command: str, prefix: list[str], cwd: Path, report: Path
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", SANDBOX_ARGV_ENV: encode(prefix), shell.RUSAGE_FILE_ENV: str(report)}
    return subprocess.run(
        [str(stage_shell), "-c", command], env=env, cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )


def test_the_stage_shell_runs_the_command_behind_the_prefix(stage_shell: Path, tmp_path: Path) -> None:
    report = tmp_path / "usage.jsonl"
    result = run_shell(
        stage_shell,
        "echo $0; echo FOO=$FOO; printenv STAGE_SANDBOX_ARGV || echo unset",
        ["/usr/bin/env", "FOO=1"],
        tmp_path,
        report,
    )

    assert result.returncode == 0, result.stderr
    # env FOO=1 ran /bin/sh -c CMD, and the command never sees the prefix's variable.
    assert result.stdout == "/bin/sh\nFOO=1\nunset\n"


def test_an_empty_prefix_is_no_prefix(stage_shell: Path, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", SANDBOX_ARGV_ENV: ""}
    result = subprocess.run(
        [str(stage_shell), "-c", "echo plain"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stdout == "plain\n"


def test_acls_open_the_workspace_but_not_git_or_dvc(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    for folder in ("data/sub", ".git/objects", ".dvc/cache"):
        (ws / folder).mkdir(parents=True)
    (ws / "data" / "f.csv").write_text("x")

    grant_tree(ws, 65534)

    for folder in (ws, ws / "data", ws / "data" / "sub"):
        entries = decode(os.getxattr(folder, ACCESS))
        assert (0x02, 7, 65534) in entries, folder
        assert (0x02, 7, 65534) in decode(os.getxattr(folder, DEFAULT))
    assert (0x02, 6, 65534) in decode(os.getxattr(ws / "data" / "f.csv", ACCESS))
    for untouched in (ws / ".git", ws / ".git" / "objects", ws / ".dvc"):
        with pytest.raises(OSError):
            os.getxattr(untouched, ACCESS)
    # Once granted, nothing is written again (an ACL write changes ctime, which executePipeline reads as a change).
    ctimes = {path: path.stat().st_ctime_ns for path in (ws, ws / "data", ws / "data" / "f.csv")}
    grant_tree(ws, 65534)
    assert {path: path.stat().st_ctime_ns for path in ctimes} == ctimes
    # Owner, group and other bits are kept; the mask lets the named user through.
    assert decode(acl(0o750, 65534, 7)) == [
        (0x01, 7, -1),
        (0x02, 7, 65534),
        (0x04, 5, -1),
        (0x10, 7, -1),
        (0x20, 0, -1),
    ]


def decode(blob: bytes) -> list[tuple[int, int, int]]:
    (version,) = struct.unpack_from("<I", blob)
    assert version == 2
    entries = []
    for offset in range(4, len(blob), 8):
        tag, perm, ident = struct.unpack_from("<HHI", blob, offset)
        entries.append((tag, perm, -1 if ident == 0xFFFFFFFF else ident))
    return entries


@pytest.fixture
def sandboxed(tmp_path: Path) -> tuple[Path, list[str]]:
    """A real sandbox prefix around a fresh workspace (skips nothing: bwrap must work on this machine)."""
    capability = probe(tmp_path / "root", 65534)
    assert capability.available, capability.detail
    ws = tmp_path / "root" / "ws"
    (ws / ".git").mkdir(parents=True)
    uid = capability.uid
    if uid is not None:
        grant_tree(ws, uid)
    return ws, build_argv(SandboxSpec(workspace=ws, uid=uid, root_links=root_links()))


def test_usage_exit_codes_and_signals_stay_exact_in_the_sandbox(
    stage_shell: Path, sandboxed: tuple[Path, list[str]], tmp_path: Path
) -> None:
    ws, prefix = sandboxed
    report = tmp_path / "usage.jsonl"
    allocate = "python3 -c \"b = bytearray(64 << 20); b[::4096] = b'x' * (len(b) // 4096)\""

    assert run_shell(stage_shell, allocate, prefix, ws, report).returncode == 0
    assert run_shell(stage_shell, "exit 3", prefix, ws, report).returncode == 3
    assert run_shell(stage_shell, "kill -TERM $$", prefix, ws, report).returncode == 128 + 15
    assert run_shell(stage_shell, "kill -KILL $$", prefix, ws, report).returncode == 128 + 9
    # Output reopened through /dev/stdout, /dev/stderr (the worker's pipes) works as it does unsandboxed.
    reopened = subprocess.run(
        [str(stage_shell), "-c", "echo out > /dev/stdout; echo err > /dev/stderr"],
        env={"PATH": "/usr/bin:/bin", SANDBOX_ARGV_ENV: encode(prefix)},
        cwd=ws,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (reopened.returncode, reopened.stdout, reopened.stderr) == (0, "out\n", "err\n"), reopened

    ended = [json.loads(line) for line in report.read_text().splitlines() if "exit_code" in line]
    assert [line["exit_code"] for line in ended] == [0, 3, 143, 137]
    # The command's own peak memory reaches the stage shell through bwrap and its PID 1.
    assert 64 * MiB <= ended[0]["maxrss_kib"] * 1024 < 200 * MiB


def test_the_command_is_a_real_unprivileged_user_without_privileges(
    stage_shell: Path, sandboxed: tuple[Path, list[str]], tmp_path: Path
) -> None:
    ws, prefix = sandboxed
    uid = probe(tmp_path / "root", 65534).uid
    show = (
        "cat /proc/self/status; echo; echo $(for fd in /proc/$$/fd/*; do readlink $fd; done); "
        "grep ^Uid /proc/1/status; kill -TERM 1 || echo refused"
    )
    result = run_shell(stage_shell, show, prefix, ws, tmp_path / "usage.jsonl")

    assert result.returncode == 0, result.stderr
    status, after = result.stdout.split("\n\n")
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    descriptors, pid_1, *rest = after.splitlines()
    if uid is not None:
        # Real, effective, saved and file-system ids all the sandbox's user, no supplementary group.
        assert fields["Uid"].split() == [str(uid)] * 4 and fields["Gid"].split() == [str(uid)] * 4
        assert fields["Groups"].split() == []
        # PID 1 stays root's, so the command cannot signal it.
        assert pid_1.split() == ["Uid:", "0", "0", "0", "0"] and rest == ["refused"], after
    # No capability in any set, the bounding set included, and no way to gain one (setuid binaries, file caps).
    for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(fields[name], 16) == 0, (name, fields[name])
    assert fields["NoNewPrivs"].strip() == "1"
    # The stage shell's executable, handed to bwrap as fd 3, does not reach the command.
    assert str(stage_shell) not in descriptors and "stage-shell" not in descriptors, descriptors


def test_what_a_command_leaves_running_ends_with_it(
    stage_shell: Path, sandboxed: tuple[Path, list[str]], tmp_path: Path
) -> None:
    ws, prefix = sandboxed
    result = run_shell(stage_shell, "setsid sleep 301 & (sleep 302 &) ; echo started", prefix, ws, tmp_path / "u")

    assert result.returncode == 0 and result.stdout == "started\n"
    assert processes_in(ws) == []


def processes_in(folder: Path) -> list[int]:
    """Host pids of the processes working in ``folder`` (a bwrap sandbox's processes keep their host cwd path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd") == str(folder):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
