"""Every stage command in a bubblewrap sandbox built per stage (see argv.py for what it shows and hides)."""

from workers.sandbox.policy import (
    SANDBOX_ARGV_ENV,
    SEPARATOR,
    SandboxPolicy,
    SandboxRefused,
    configure,
    current,
    encode,
    forget,
    keep_recorded,
    prepare_workspace,
    record,
    stage_prefix,
)

__all__ = [
    "SANDBOX_ARGV_ENV",
    "SEPARATOR",
    "SandboxPolicy",
    "SandboxRefused",
    "configure",
    "current",
    "encode",
    "forget",
    "keep_recorded",
    "prepare_workspace",
    "record",
    "stage_prefix",
]
