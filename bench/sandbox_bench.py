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

    async def sandboxed() -> float:
        return await asyncio.to_thread(_per_launch_ms, shell, workspace, sandboxed_env)

    async def plain() -> float:
        return await asyncio.to_thread(_per_launch_ms, shell, workspace, plain_env)

    ours_samples, baseline_samples = await interleaved(ctx.sizes.rounds, sandboxed, plain)
    ours, baseline = Summary.of(ours_samples), Summary.of(baseline_samples)
    cost = ours.median - baseline.median
    row = Row(
        name,
        f"{summary_text(ours, 'ms')}, +{cost:.1f} ms",
        summary_text(baseline, "ms"),
        ours.median / baseline.median if baseline.median else None,
        f"≤ +{TARGET_MS:g} ms per stage",
        cost <= TARGET_MS,
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


def _per_launch_ms(shell: Path, cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    for _ in range(LAUNCHES_PER_SAMPLE):
        subprocess.run([str(shell), "-c", COMMAND], cwd=cwd, env=env, check=True, stdin=subprocess.DEVNULL)
    return (time.perf_counter() - started) * 1000 / LAUNCHES_PER_SAMPLE
