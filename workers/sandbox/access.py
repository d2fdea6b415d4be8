"""Let the sandbox's unprivileged user write a workspace the worker (root) owns, with POSIX ACLs.

The workspace stays root's: git refuses a repository whose folder another user owns ("dubious ownership"), and the
worker's git, DVC and file writes go on as before. Every folder gets an access and a default entry for the sandbox's
user (what anyone makes there later inherits it), every file an access entry: a stage writes its workspace as it
would unsandboxed. Done when a workspace is created (before its pipelines are validated: an ACL write changes a
file's ctime, which executePipeline reads as a change) and checked before a worker's first stage in it, rewriting
only what lacks the entry. ``.git`` and ``.dvc`` are skipped: they are read-only inside the sandbox. Written as the
kernel's ``system.posix_acl_*`` extended attributes directly (no acl package needed); links are never followed.
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

ACCESS = "system.posix_acl_access"
DEFAULT = "system.posix_acl_default"
_VERSION = 2
_USER_OBJ, _USER, _GROUP_OBJ, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x10, 0x20
_UNDEFINED_ID = 0xFFFFFFFF
SKIPPED = frozenset({".git", ".dvc"})


def acl(mode: int, uid: int, user_perms: int) -> bytes:
    """An ACL keeping ``mode``'s owner, group and other bits, giving ``uid`` ``user_perms`` (the mask lets it)."""
    entries = [
        (_USER_OBJ, (mode >> 6) & 7, _UNDEFINED_ID),
        (_USER, user_perms, uid),
        (_GROUP_OBJ, (mode >> 3) & 7, _UNDEFINED_ID),
        (_MASK, user_perms | ((mode >> 3) & 7), _UNDEFINED_ID),
        (_OTHER, mode & 7, _UNDEFINED_ID),
    ]
    return struct.pack("<I", _VERSION) + b"".join(struct.pack("<HHI", *entry) for entry in entries)


def _grant(path: str, info: os.stat_result, uid: int) -> None:
    if stat.S_ISDIR(info.st_mode):
        if not _allows(_current(path, ACCESS), uid, 7):
            os.setxattr(path, ACCESS, acl(info.st_mode, uid, 7), follow_symlinks=False)
        if not _allows(_current(path, DEFAULT), uid, 7):
            os.setxattr(path, DEFAULT, acl(0o775, uid, 7), follow_symlinks=False)
    elif stat.S_ISREG(info.st_mode) and not _allows(_current(path, ACCESS), uid, 6):
        # rw, and x where the file is executable for its owner.
        os.setxattr(path, ACCESS, acl(info.st_mode, uid, 6 | ((info.st_mode >> 6) & 1)), follow_symlinks=False)


def _allows(blob: bytes | None, uid: int, perms: int) -> bool:
    """Whether the ACL ``blob`` gives ``uid`` at least ``perms`` through its mask (nothing rewritten otherwise: an
    ACL write changes the file's ctime, which executePipeline reads as a change)."""
    if not blob or len(blob) < 4:
        return False
    named = mask = 0
    for offset in range(4, len(blob) - 7, 8):
        tag, perm, ident = struct.unpack_from("<HHI", blob, offset)
        if tag == _USER and ident == uid:
            named = perm
        elif tag == _MASK:
            mask = perm
    return named & mask & perms == perms


def _current(path: str, name: str) -> bytes | None:
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError:
        return None


def grant_folder(workspace: Path, uid: int) -> None:
    """Only the workspace's own folder (a quick check before every stage)."""
    _grant(str(workspace), os.lstat(workspace), uid)


def grant_tree(workspace: Path, uid: int) -> None:
    """The workspace folder and everything under it but ``.git`` and ``.dvc``; raises OSError when the workspace
    folder itself takes no ACL (the sandbox's probe runs this first)."""
    grant_folder(workspace, uid)
    pending = [str(workspace)]
    while pending:
        folder = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if folder == str(workspace) and entry.name in SKIPPED:
                    continue
                try:
                    info = entry.stat(follow_symlinks=False)
                    _grant(entry.path, info, uid)
                except OSError:
                    # Removed or swapped for a link meanwhile: the stage may not write there, nothing worse.
                    continue
                if stat.S_ISDIR(info.st_mode):
                    pending.append(entry.path)
