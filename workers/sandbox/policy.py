"""The worker's sandbox policy: probe once, then for each stage a bubblewrap prefix, or a refusal.

Three outcomes, decided at start-up: the sandbox works (every stage command runs in it); it does not, and the run
fails before its first stage with the reason; or the operator set STAGES_UNSANDBOXED=true and stage commands run as
the worker's own user, with only the worker's allow-listed environment (and /health says so).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from redis.asyncio import Redis

from app.sandbox_status import sandbox_status_key
from app.settings import Settings
from workers.sandbox import access
from workers.sandbox.argv import SandboxSpec, build_argv
from workers.sandbox.capability import Capability, probe, root_links

logger = logging.getLogger(__name__)

SANDBOX_ARGV_ENV = "STAGE_SANDBOX_ARGV"
SEPARATOR = "\x1f"
"""The ASCII unit separator between the prefix's arguments (the stage-shell contract)."""
UNSANDBOXED_SETTING = "STAGES_UNSANDBOXED"
RECORD_EVERY_SECONDS = 10.0
SERVICE_VARIABLES = tuple(
    sorted({str(field.validation_alias) for field in Settings.model_fields.values() if field.validation_alias})
)
"""The service's own settings (MONGODB_URL, REDIS_URL, ...): never seen by a stage command."""


@dataclass(frozen=True)
class SandboxPolicy:
    capability: Capability
    unsandboxed: bool
    """The operator's explicit STAGES_UNSANDBOXED=true: stage commands run without a sandbox."""

    @property
    def mode(self) -> str:
        if self.unsandboxed:
            return "unsandboxed"
        return "bubblewrap" if self.capability.available else "refusing"

    @property
    def refusal(self) -> str | None:
        """Why stage commands may not start here, or None."""
        if self.mode != "refusing":
            return None
        return (
            f"stage commands are not started: this worker cannot build their sandbox ({self.capability.detail}); "
            f"an operator may set {UNSANDBOXED_SETTING}=true to run them without one"
        )

    def status(self) -> dict[str, object]:
        """What /health shows."""
        return {"mode": self.mode, "ok": self.mode != "refusing", **self.capability.as_dict()}


class SandboxRefused(RuntimeError):
    """A stage command was about to start without the sandbox this worker requires."""


_lock = threading.Lock()
_policy: SandboxPolicy | None = None
_granted: set[Path] = set()


def configure(settings: Settings) -> SandboxPolicy:
    """Probe the sandbox (about a tenth of a second) and keep the policy for the stages of this process."""
    global _policy
    capability = probe(settings.workspace_root, settings.stage_sandbox_uid)
    policy = SandboxPolicy(capability=capability, unsandboxed=settings.stages_unsandboxed)
    with _lock:
        _policy = policy
        _granted.clear()
    return policy


def current() -> SandboxPolicy:
    """The policy ``configure`` set, probed now from the environment's settings if nothing configured it."""
    with _lock:
        policy = _policy
    return policy if policy is not None else configure(Settings.from_env())


def stage_prefix(
    workspace: Path, *, python_env: Path | None = None, python_home: Path | None = None
) -> list[str] | None:
    """The sandbox prefix for a stage command in ``workspace``; None when the operator chose no sandbox.

    ``python_home``: the install folder of ``python_env``'s base interpreter, when known before the environment is
    built (else read from its pyvenv.cfg); mounted read-only unless it is under /usr, which is mounted anyway.

    Raises SandboxRefused when the sandbox is required but cannot be built. When the worker is root, the workspace is
    made writable for the sandbox's user first: the whole tree the first time this process meets it, its top folder
    afterwards (what the worker writes later inherits the folders' default ACLs).
    """
    policy = current()
    if policy.unsandboxed:
        return None
    if policy.refusal is not None:
        raise SandboxRefused(policy.refusal)
    uid = policy.capability.uid
    if uid is not None:
        with _lock:
            known = workspace in _granted
        if known:
            access.grant_folder(workspace, uid)
        else:
            access.grant_tree(workspace, uid)
            with _lock:
                _granted.add(workspace)
    return build_argv(
        SandboxSpec(
            workspace=workspace,
            python_env=python_env,
            python_home=_interpreter_home(python_env, python_home),
            uid=uid,
            root_links=root_links(),
            unset_variables=SERVICE_VARIABLES,
        )
    )


def prepare_workspace(workspace: Path) -> None:
    """Open a new workspace to the sandbox's user (when the worker is root and sandboxes stages); blocking."""
    policy = current()
    if policy.mode == "bubblewrap" and policy.capability.uid is not None:
        access.grant_tree(workspace, policy.capability.uid)
        with _lock:
            _granted.add(workspace)


def encode(prefix: list[str]) -> str:
    """The value of STAGE_SANDBOX_ARGV for ``prefix``."""
    if any(SEPARATOR in part or "\0" in part for part in prefix):
        raise ValueError("a sandbox argument contains the separator or a NUL byte")
    return SEPARATOR.join(prefix)


def _interpreter_home(python_env: Path | None, given: Path | None) -> Path | None:
    if given is None:
        return _base_interpreter_home(python_env)
    return None if python_env is None or given.is_relative_to("/usr") else given


def _base_interpreter_home(python_env: Path | None) -> Path | None:
    """The install folder of a virtualenv's base interpreter (``home`` in pyvenv.cfg) when it is outside /usr."""
    if python_env is None:
        return None
    try:
        lines = (python_env / "pyvenv.cfg").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "home" and value.strip():
            home = Path(value.strip())
            prefix = home.parent if home.name == "bin" else home
            if prefix.is_absolute() and not prefix.is_relative_to("/usr") and prefix != python_env:
                return prefix
    return None


async def record(redis: Redis, settings: Settings, policy: SandboxPolicy) -> None:
    """Write this worker process's policy where /health reads it, stamped with the time."""
    entry = json.dumps({**policy.status(), "recorded_at": time.time()})
    # redis-py types hash commands as sync-or-async; on an asyncio client they are awaitables.
    await cast("Awaitable[int]", redis.hset(sandbox_status_key(settings.runs_queue_name), _worker_id(), entry))


async def keep_recorded(redis: Redis, settings: Settings, policy: SandboxPolicy) -> None:
    """Record the policy now and again every RECORD_EVERY_SECONDS (/health forgets entries not refreshed)."""
    while True:
        try:
            await record(redis, settings, policy)
        except Exception as error:  # Redis away for a moment: /health says so by itself
            logger.warning("stage sandbox status not recorded: %s", error)
        await asyncio.sleep(RECORD_EVERY_SECONDS)


async def forget(redis: Redis, settings: Settings) -> None:
    """Remove this worker process's entry (it stops)."""
    await cast("Awaitable[int]", redis.hdel(sandbox_status_key(settings.runs_queue_name), _worker_id()))


def _worker_id() -> str:
    return f"{os.uname().nodename}:{os.getpid()}"
