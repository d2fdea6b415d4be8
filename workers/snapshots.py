"""Byte-exact snapshots of a few workspace files, so a failed write can be undone."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class FileSnapshot:
    root: Path
    contents: dict[str, bytes | None]
    """Relative path -> its bytes, or None when the file did not exist."""

    @classmethod
    def take(cls, root: Path, paths: list[str]) -> FileSnapshot:
        contents: dict[str, bytes | None] = {}
        for path in paths:
            target = root / path
            contents[path] = target.read_bytes() if target.is_file() else None
        return cls(root=root, contents=contents)

    def restore(self) -> None:
        for path, content in self.contents.items():
            target = self.root / path
            if content is None:
                target.unlink(missing_ok=True)
                _remove_empty_parents(target.parent, self.root)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.restore")
            temporary.write_bytes(content)
            os.replace(temporary, target)


def _remove_empty_parents(folder: Path, root: Path) -> None:
    while folder != root and folder.is_relative_to(root):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
