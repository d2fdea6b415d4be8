"""The environment stage commands run in: what a command needs, none of the worker's secrets."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from workers import sandbox
from workers.sandbox.network import with_network

DEFAULT_LOCALE = "C.UTF-8"


def stage_environment(
    extra: Mapping[str, str] | None = None,
    *,
    workspace: Path | None = None,
    python_environment: Path | None = None,
    python_home: Path | None = None,
    network: bool = False,
) -> dict[str, str]:
    """A clean environment for DVC and the stage commands it runs, plus ``extra`` (which wins).

    With a ``workspace``, stage commands run in their sandbox (workers/sandbox/; the ``python_environment`` is
    mounted in it read-only, first on PATH, with ``python_home``, the prefix of its base interpreter, which its
    ``python`` links into): its prefix goes in STAGE_SANDBOX_ARGV for the stage shell. Raises
    SandboxRefused when this worker requires a sandbox it cannot build. ``network``: the project's owner allowed its
    stages a network, which the sandbox then gets (workers/sandbox/network.py; raises NetworkUnavailable when this
    worker lacks slirp4netns); unsandboxed (the operator's choice) a command has the worker's network anyway.

    Built from an allow-list, so the worker's MONGODB_URL, REDIS_URL, tokens and cloud credentials never reach a
    command. With a ``python_environment`` (the project's virtualenv, workers.environments), its ``bin/`` leads PATH
    and VIRTUAL_ENV names it, and the worker's own interpreter folder is not on PATH at all: the service's packages
    are never importable from a stage. Without one (launches outside a run) the worker's interpreter folder leads
    PATH, as before. Python output is unbuffered so that a command's prints reach the live log as they happen.
    """
    service_dirs = {str(Path(sys.executable).parent), str(Path(sys.prefix) / "bin")}
    inherited = os.environ.get("PATH", os.defpath).split(os.pathsep)
    # An empty entry means the current directory: never for a command running in a user's workspace.
    path = [entry for entry in inherited if entry and entry not in service_dirs]
    first = python_environment / "bin" if python_environment is not None else Path(sys.executable).parent
    path.insert(0, str(first))
    env = {
        "PATH": os.pathsep.join(path),
        "HOME": os.environ.get("HOME") or os.path.expanduser("~"),
        "LANG": os.environ.get("LANG") or DEFAULT_LOCALE,
        "LC_ALL": os.environ.get("LC_ALL") or DEFAULT_LOCALE,
        "DVC_NO_ANALYTICS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    if python_environment is not None:
        env["VIRTUAL_ENV"] = str(python_environment)
    if os.environ.get("TMPDIR"):
        env["TMPDIR"] = os.environ["TMPDIR"]
    env.update(extra or {})
    if workspace is not None:
        prefix = sandbox.stage_prefix(workspace, python_env=python_environment, python_home=python_home)
        if prefix is not None:
            if network:
                prefix = with_network(prefix)
            env[sandbox.SANDBOX_ARGV_ENV] = sandbox.encode(prefix)
    return env
