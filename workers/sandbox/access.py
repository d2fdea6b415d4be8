"""Let the sandbox's unprivileged user write a workspace the worker (root) owns, with POSIX ACLs.

The workspace stays root's: git refuses a repository whose folder another user owns ("dubious ownership"), and the
worker's git, DVC and file writes go on as before. Each folder gets an access and a default entry for the sandbox's
user, so a stage creates, replaces and removes files anywhere in its workspace, and what anyone makes there later
inherits the entry. Files that exist already are left as they are (their ctime too, which tells executePipeline
whether a pipeline needs validating again): a stage cannot change in place a file the worker wrote before the
workspace's first sandboxed stage, only replace it (DVC removes a stage's outputs before running it anyway). ``.git``
and ``.dvc`` get nothing: they are read-only inside the sandbox. Written as the kernel's ``system.posix_acl_*``
extended attributes directly (no acl package needed); symbolic links are never followed.
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
    if not stat.S_ISDIR(info.st_mode):
        return
    wanted = acl(info.st_mode, uid, 7)
    if _current(path, ACCESS) != wanted:
        os.setxattr(path, ACCESS, wanted, follow_symlinks=False)
    default = acl(0o755, uid, 7)
    if _current(path, DEFAULT) != default:
        os.setxattr(path, DEFAULT, default, follow_symlinks=False)


def _current(path: str, name: str) -> bytes | None:
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError:
        return None


def grant_folder(workspace: Path, uid: int) -> None:
    """Only the workspace's own folder (a quick check before every stage)."""
    _grant(str(workspace), os.lstat(workspace), uid)


def grant_tree(workspace: Path, uid: int) -> None:
    """The workspace folder and every folder under it but ``.git`` and ``.dvc``; raises OSError when the workspace
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

