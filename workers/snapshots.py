"""Byte-exact snapshots of a few workspace files, so a failed write can be undone."""

from __future__ import annotations

import base64
import json
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


# An undo log for pipeline writes: a worker killed between writing a dvc.yaml and storing its
# document leaves this behind, and the next operation on the workspace settles it.
JOURNAL_DIR = ".dvc/tmp/service-journal"


@dataclass(frozen=True, slots=True)
class WriteIntent:
    """What a pipeline write was about to do, and how to undo it."""

    pipeline_name: str
    version_after: int
    """The document version the write stores; a document at this version means the write committed."""
    snapshot: FileSnapshot

    def save(self) -> Path:
        folder = self.snapshot.root / JOURNAL_DIR
        folder.mkdir(parents=True, exist_ok=True)
        entry = folder / f"{self.pipeline_name}.json"
        files = {p: None if c is None else base64.b64encode(c).decode() for p, c in self.snapshot.contents.items()}
        data = {"pipeline_name": self.pipeline_name, "version_after": self.version_after, "files": files}
        temporary = entry.with_suffix(".tmp")
        temporary.write_text(json.dumps(data))
        os.replace(temporary, entry)
        return entry


def pending_intents(root: Path) -> list[tuple[Path, WriteIntent]]:
    folder = root / JOURNAL_DIR
    if not folder.is_dir():
        return []
    intents = []
    for entry in sorted(folder.glob("*.json")):
        data = json.loads(entry.read_text())
        contents = {p: None if c is None else base64.b64decode(c) for p, c in data["files"].items()}
        snapshot = FileSnapshot(root=root, contents=contents)
        intents.append((entry, WriteIntent(data["pipeline_name"], int(data["version_after"]), snapshot)))
    return intents
