"""The bubblewrap command line that runs one stage command in its sandbox (pure: builds arguments, runs nothing).

The stage shell puts this prefix in front of ``/bin/sh -c CMD`` (the ``STAGE_SANDBOX_ARGV`` contract, see
workers/execution/stage_shell.c) and hands it its own executable as fd 3, which bwrap runs as the sandbox's PID 1
(``stage-shell --init``). Inside: a read-only root built from the system folders, a private /tmp and HOME,
a new /proc and /dev, the stage's own workspace as the only writable place (its ``.git`` and ``.dvc`` read-only), no
network (a new network namespace holds only its own loopback: the service's MongoDB and Redis are not reachable), its
own PID namespace (every process a command starts ends with it), no capabilities, and, when the worker is root, a
real unprivileged user id (set by the stage shell's PID 1 inside the sandbox) rather than a user namespace that maps
its user to root: a process mapped to root outside can read every root-owned file its mounts show (/etc/shadow is 0640
root).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BWRAP = "/usr/bin/bwrap"
# Read-only inside. Not /var, /run, /home, /opt, /srv, /mnt, /root or the service's checkout: service sockets, data
# and the service's own files live there.
SYSTEM_FOLDERS = ("/usr", "/etc")
# Merged-/usr systems have these as symbolic links into /usr; older ones as folders.
ROOT_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
HOME = "/home/stage"
TMP = "/tmp"
# The other standard temporary folder (FHS): DVC, which a project's own dvclive imports, keeps its site cache in
# /var/tmp/dvc and cannot open the repository without it. A link to the private /tmp; the rest of /var stays out.
VAR_TMP = Path("/var/tmp")
SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")
READ_ONLY_IN_WORKSPACE = (".git", ".dvc")
HOSTNAME = "stage"
INIT = ("/proc/self/fd/3", "--init")
"""PID 1 inside: the stage shell itself (stage_shell.c, which leaves its executable open as fd 3 for the prefix, so that
nothing is mounted for it). It forks the command and, when the worker is root (``--uid=N``), makes the command's
output pipes (the worker's, root's, 0600) the sandbox user's, so that `> /dev/stderr` works as unsandboxed, then drops
it to uid and gid N with no supplementary groups, an empty capability bounding set, no capabilities and no_new_privs;
it passes on SIGTERM, SIGINT and SIGHUP, waits for the command (so its usage reaches the stage shell) and exits with
its status; the PID namespace, and every process the command started, ends with it. As root's, it cannot be signalled
by the command; it dies with bwrap (--die-with-parent). One exec where coreutils timeout, sh, chown and setpriv took
three to five (the stage's cost: docs/hardening.md, "The stage sandbox")."""
DEFAULT_TMP_BYTES = 1024 * 1024 * 1024


@dataclass(frozen=True)
class SandboxSpec:
    """What one stage's sandbox shows and who runs in it."""

    workspace: Path
    """The stage's project workspace (absolute): bound at the same path, so DVC's paths and the stage's working
    folder stay valid; the only writable place besides the private /tmp and HOME."""
    python_env: Path | None = None
    """A project's Python environment (a virtualenv), bound read-only with its ``bin/`` first on PATH; without one,
    the system's ``/usr/bin/python3`` with none of the service's packages."""
    python_home: Path | None = None
    """The install folder of that environment's base interpreter, bound read-only when it is outside /usr."""
    uid: int | None = None
    """The unprivileged user (and group) id the command runs as, set by PID 1 inside the sandbox (INIT); None: the
    worker's own (only when the worker itself is not root)."""
    tmp_bytes: int = DEFAULT_TMP_BYTES
    """Size cap of the private /tmp and HOME (each a tmpfs)."""
    root_links: Sequence[tuple[str, str | None]] = ()
    """``(path, link target or None for a real folder)`` for each of ROOT_LINKS that exists on the host."""
    unset_variables: Sequence[str] = ()
    """Variables removed inside whatever passed them on (the service's settings: its URLs and secrets), besides the
    allow-list the worker's stage environment is already built from."""
    bwrap: str = BWRAP


def build_argv(spec: SandboxSpec) -> list[str]:
    """The prefix to put before ``/bin/sh -c CMD``: ``bwrap ... -- INIT [--uid=N] --``."""
    if not spec.workspace.is_absolute():
        raise ValueError(f"the workspace must be an absolute path, not {spec.workspace}")
    argv = [
        spec.bwrap,
        # As root, bwrap mounts with root's rights (a workspace under a private folder is reachable) and INIT then
        # drops the command to the unprivileged user; otherwise bwrap needs a user namespace, mapping the worker's own
        # user.
        *(() if spec.uid is not None else ("--unshare-user", "--disable-userns")),
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-uts",
        "--unshare-cgroup-try",
        # A stage dies with its stage shell (and so with DVC and the worker), whatever it started with it.
        "--die-with-parent",
        # PID 1 is INIT below, not bwrap's own: bwrap's init reports the command's exit over a pipe and is never
        # waited for, so the command's resource usage (wait4 in the stage shell) would be lost.
        "--as-pid-1",
        "--hostname",
        HOSTNAME,
    ]
    for folder in SYSTEM_FOLDERS:
        argv += ["--ro-bind", folder, folder]
    for link, target in spec.root_links:
        argv += ["--symlink", target, link] if target is not None else ["--ro-bind", link, link]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    size = str(spec.tmp_bytes)
    # Writable for the sandbox's user whoever mounted them (bwrap as root makes them root's).
    argv += ["--perms", "1777", "--size", size, "--tmpfs", TMP, "--perms", "0777", "--size", size, "--tmpfs", HOME]
    mounted = {"/", TMP, HOME, *SYSTEM_FOLDERS, *(link for link, _ in spec.root_links)}
    if not any(
        p is not None and VAR_TMP in (p, *p.parents) for p in (spec.workspace, spec.python_env, spec.python_home)
    ):
        argv += [*_searchable_parents(VAR_TMP, mounted), "--symlink", TMP, str(VAR_TMP)]
    # Searchable by the sandbox's user, so that absolute paths work inside (bwrap makes the folders it needs for a
    # mount private to root: /root for an interpreter installed under it, a test's 0700 temporary folder).
    argv += _searchable_parents(spec.workspace, mounted)
    workspace = str(spec.workspace)
    argv += ["--bind", workspace, workspace]
    for name in READ_ONLY_IN_WORKSPACE:
        inside = str(spec.workspace / name)
        # -try: a workspace without one gets no mount (bwrap would otherwise create it in the workspace).
        argv += ["--ro-bind-try", inside, inside]
    path = list(SYSTEM_PATH)
    if spec.python_env is not None:
        env = str(spec.python_env)
        argv += [*_searchable_parents(spec.python_env, mounted), "--ro-bind", env, env]
        path.insert(0, str(spec.python_env / "bin"))
        if spec.python_home is not None:
            home = str(spec.python_home)
            argv += [*_searchable_parents(spec.python_home, mounted), "--ro-bind", home, home]
    argv += [
        # The root folder bwrap builds its mounts in is a writable tmpfs until told otherwise.
        "--remount-ro",
        "/",
        "--setenv",
        "PATH",
        ":".join(path),
        "--setenv",
        "HOME",
        HOME,
        "--setenv",
        "TMPDIR",
        TMP,
    ]
    for name in (*spec.unset_variables, "PYTHONPATH", "PYTHONHOME"):
        argv += ["--unsetenv", name]
    argv += ["--", *INIT, *(() if spec.uid is None else (f"--uid={spec.uid}",)), "--"]
    return argv


def _searchable_parents(path: Path, mounted: set[str]) -> list[str]:
    """bwrap arguments making each folder above ``path`` that is not mounted already, mode 0755; adds them to
    ``mounted``."""
    argv: list[str] = []
    for parent in reversed(path.parents):
        if str(parent) not in mounted:
            mounted.add(str(parent))
            argv += ["--perms", "0755", "--dir", str(parent)]
    return argv
