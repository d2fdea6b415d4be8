"""The per-project network's cost per stage: a stage command through the stage shell in its sandbox with the
network an owner may allow (workers/sandbox/network.py: the helper, slirp4netns, the closed routes), against the
same sandbox without it, interleaved in the same run."""

from __future__ import annotations

import asyncio

from bench.context import Context
from bench.results import Row
from bench.sandbox_bench import COMMAND, launch_cost_row
from workers.execution.shell import stage_shell_path
from workers.sandbox import SANDBOX_ARGV_ENV, encode
from workers.sandbox.access import grant_tree
from workers.sandbox.argv import SandboxSpec, build_argv
from workers.sandbox.capability import probe, root_links
from workers.sandbox.network import missing_tool, with_network
from workers.sandbox.policy import SERVICE_VARIABLES

LAUNCHES_PER_SAMPLE = 5
TARGET_MS = 300.0
SANDBOX_UID = 65534


async def run(ctx: Context) -> list[Row]:
    name = f"stage command in its sandbox with network allowed (per stage, `{COMMAND}`)"
    capability = await asyncio.to_thread(probe, ctx.stack.workspace_root, SANDBOX_UID)
    why = missing_tool() if capability.available else capability.detail
    if why is not None:
        return [Row.absolute(name, "n/a", target=f"≤ +{TARGET_MS:g} ms", met=False).with_notes(why)]
    workspace = ctx.scratch / "network-workspace"
    (workspace / ".git").mkdir(parents=True, exist_ok=True)
    if capability.uid is not None:
        grant_tree(workspace, capability.uid)
    prefix = build_argv(
        SandboxSpec(workspace=workspace, uid=capability.uid, root_links=root_links(), unset_variables=SERVICE_VARIABLES)
    )
    shell = await asyncio.to_thread(stage_shell_path)
    plain_env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", SANDBOX_ARGV_ENV: encode(prefix)}
    networked_env = {**plain_env, SANDBOX_ARGV_ENV: encode(with_network(prefix))}

    row = await launch_cost_row(
        ctx, name, shell, workspace, networked_env, plain_env, launches=LAUNCHES_PER_SAMPLE, target_ms=TARGET_MS
    )
    return [
        row.with_notes(
            f"The worker's stage shell running `/bin/sh -c {COMMAND}` {LAUNCHES_PER_SAMPLE} times per sample in its "
            "sandbox with the network of a project whose owner allowed one (the launch script, the orphaned helper, "
            "slirp4netns attached to the sandbox's namespace, the unreachable routes) against the same sandbox "
            "without network; the ratio column is with / without."
        )
    ]

