"""Can this worker build a stage sandbox? Found out once at start-up by building one, and said in /health.

The probe runs the same prefix a stage gets (workers.sandbox.argv) through the stage shell on a throwaway workspace
under WORKSPACE_ROOT, so everything a stage needs is tried for real: bubblewrap present, user/PID/network/mount
namespaces allowed, the stage shell's PID 1 dropping to the sandbox's user, ACLs on the workspace file system, the
workspace reachable by that user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workers.sandbox import access
from workers.sandbox.argv import BWRAP, ROOT_LINKS, SandboxSpec, build_argv

PROBE_SECONDS = 20.0
PROBE_FILE = "sandbox-probe"
CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Capability:
    """What the probe found."""

    available: bool
    """Whether a stage sandbox could be built here."""
    detail: str
    """Why not (the failing step and its error), or the tool's version."""
    uid: int | None
    """The unprivileged user id stages run as (None: the worker's own, when it is not root)."""
    cgroup: str
    """Whether per-stage cgroup v2 limits (processes, memory) are usable here, and why not."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def root_links() -> list[tuple[str, str | None]]:
    """Each of ROOT_LINKS that exists on this host: its link target, or None when it is a real folder."""
    found: list[tuple[str, str | None]] = []
    for path in ROOT_LINKS:
        if os.path.islink(path):
            found.append((path, os.readlink(path)))
        elif os.path.isdir(path):
            found.append((path, None))
    return found


def sandbox_uid(configured: int) -> int | None:
    """``configured`` when the worker is root (it must give that id away); else None, the worker's own id."""
    return configured if os.geteuid() == 0 else None


def probe(workspace_root: Path, configured_uid: int, stage_shell: Path | None = None) -> Capability:
    """Build a sandbox around a throwaway workspace and run a command that writes into it, through ``stage_shell``
    (default: the worker's, workers.execution.shell)."""
    # Imported here: workers.execution imports this package.
    from workers.execution.shell import SANDBOX_ARGV_ENV, SANDBOX_ARGV_SEPARATOR, StageShellError, stage_shell_path

    uid = sandbox_uid(configured_uid)
    cgroup = cgroup_v2_status()
    if not os.access(BWRAP, os.X_OK):
        return Capability(False, f"{BWRAP} not found (Debian package bubblewrap)", uid, cgroup)
    try:
        shell = stage_shell if stage_shell is not None else stage_shell_path()
    except StageShellError as error:
        return Capability(False, str(error), uid, cgroup)
    workspace_root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".sandbox-probe-", dir=workspace_root))
    try:
        if uid is not None:
            try:
                access.grant_tree(folder, uid)
            except OSError as error:
                return Capability(False, f"cannot set ACLs under {workspace_root}: {error}", uid, cgroup)
        argv = build_argv(SandboxSpec(workspace=folder, uid=uid, root_links=root_links()))
        try:
            result = subprocess.run(
                [str(shell), "-c", f"echo ok > {PROBE_FILE}"],
                cwd=folder,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", SANDBOX_ARGV_ENV: SANDBOX_ARGV_SEPARATOR.join(argv)},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=PROBE_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return Capability(False, f"bubblewrap did not run: {error}", uid, cgroup)
        written = folder / PROBE_FILE
        if result.returncode != 0 or not written.exists() or written.read_text().strip() != "ok":
            why = (result.stderr or result.stdout).strip()[-500:] or f"exit code {result.returncode}"
            return Capability(False, f"bubblewrap cannot build a sandbox here: {why}", uid, cgroup)
        version = subprocess.run([BWRAP, "--version"], capture_output=True, text=True, check=False).stdout.strip()
        return Capability(True, version or "bubblewrap", uid, cgroup)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def cgroup_v2_status() -> str:
    """Whether this process sits in a cgroup v2 hierarchy with the memory and pids controllers it could delegate."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError as error:
        return f"not usable: {error}"
    if any(not line.startswith("0::") for line in lines):
        return "not usable: cgroup v1 or a hybrid hierarchy (controllers on v1), per-stage limits are rlimits only"
    own = CGROUP_ROOT / lines[0].removeprefix("0::").lstrip("/")
    try:
        controllers = (own / "cgroup.controllers").read_text().split()
    except OSError as error:
        return f"not usable: {error}"
    missing = {"memory", "pids"} - set(controllers)
    if missing:
        return f"not usable: controllers {', '.join(sorted(missing))} not delegated to {own}"
    if not os.access(own, os.W_OK):
        return f"not usable: {own} is not writable"
    return f"usable at {own} (not applied yet: per-stage limits are rlimits only)"
