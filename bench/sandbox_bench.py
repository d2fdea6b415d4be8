"""The stage sandbox's cost per stage: a stage command through the stage shell in its bubblewrap sandbox (as the
worker builds it), against the same stage shell without one, interleaved in the same run."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

from bench.context import Context
from bench.results import Row, summary_text
from bench.rounds import interleaved
from bench.stats import Summary
from workers.execution.shell import stage_shell_path
from workers.sandbox import SANDBOX_ARGV_ENV, encode
from workers.sandbox.access import grant_tree
from workers.sandbox.argv import SandboxSpec, build_argv
from workers.sandbox.capability import probe, root_links
from workers.sandbox.policy import SERVICE_VARIABLES

LAUNCHES_PER_SAMPLE = 10
COMMAND = "true"
TARGET_MS = 50.0
SANDBOX_UID = 65534


async def run(ctx: Context) -> list[Row]:
    name = f"stage command in its sandbox (per stage, `{COMMAND}`)"
    capability = await asyncio.to_thread(probe, ctx.stack.workspace_root, SANDBOX_UID)
    if not capability.available:
        return [Row.absolute(name, "n/a", target=f"≤ +{TARGET_MS:g} ms", met=False).with_notes(capability.detail)]
    workspace = ctx.scratch / "sandbox-workspace"
    (workspace / ".git").mkdir(parents=True, exist_ok=True)
    if capability.uid is not None:
        grant_tree(workspace, capability.uid)
    prefix = build_argv(
        SandboxSpec(workspace=workspace, uid=capability.uid, root_links=root_links(), unset_variables=SERVICE_VARIABLES)
    )
    shell = await asyncio.to_thread(stage_shell_path)
    plain_env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    sandboxed_env = {**plain_env, SANDBOX_ARGV_ENV: encode(prefix)}

    row = await launch_cost_row(
        ctx, name, shell, workspace, sandboxed_env, plain_env, launches=LAUNCHES_PER_SAMPLE, target_ms=TARGET_MS
    )
    return [
        row.with_notes(
            f"The worker's stage shell (`{shell.name}`) running `/bin/sh -c {COMMAND}` {LAUNCHES_PER_SAMPLE} times per "
            "sample, in its sandbox (bwrap with new PID, network, IPC and UTS namespaces, read-only system folders, "
            f"private /tmp and HOME, uid {capability.uid} set by the stage shell as the sandbox's PID 1 when root; the "
            "prefix workers/sandbox/ builds) "
            "against the same stage shell without `STAGE_SANDBOX_ARGV`; the ratio column is sandboxed / plain. "
            f"Cgroup v2: {capability.cgroup}."
        )
    ]


async def launch_cost_row(
    ctx: Context,
    name: str,
    shell: Path,
    workspace: Path,
    ours_env: dict[str, str],
    baseline_env: dict[str, str],
    *,
    launches: int,
    target_ms: float,
) -> Row:
    """The stage shell launching ``COMMAND`` with ``ours_env`` against ``baseline_env``, rounds interleaved; the row
    says the cost per launch (the difference of the medians) against ``target_ms``."""

    async def ours() -> float:
        return await asyncio.to_thread(per_launch_ms, shell, workspace, ours_env, launches)

    async def baseline() -> float:
        return await asyncio.to_thread(per_launch_ms, shell, workspace, baseline_env, launches)

    ours_samples, baseline_samples = await interleaved(ctx.sizes.rounds, ours, baseline)
    mine, theirs = Summary.of(ours_samples), Summary.of(baseline_samples)
    cost = mine.median - theirs.median
    return Row(
        name,
        f"{summary_text(mine, 'ms')}, +{cost:.1f} ms",
        summary_text(theirs, "ms"),
        mine.median / theirs.median if theirs.median else None,
        f"≤ +{target_ms:g} ms per stage",
        cost <= target_ms,
    )


def per_launch_ms(shell: Path, cwd: Path, env: dict[str, str], launches: int) -> float:
    started = time.perf_counter()
    for _ in range(launches):
        subprocess.run([str(shell), "-c", COMMAND], cwd=cwd, env=env, check=True, stdin=subprocess.DEVNULL)
    return (time.perf_counter() - started) * 1000 / launches
