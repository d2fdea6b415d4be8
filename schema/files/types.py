"""GraphQL types of workspace files."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from app.domain.files import FileEntry as DomainFileEntry
from app.domain.files import FileKind as DomainFileKind
from app.domain.files import TextFile as DomainTextFile
from schema.errors import ForbiddenError, NotFoundError, PayloadTooLargeError, ValidationError

# The domain enum is the GraphQL enum; strawberry.enum registers it (as a statement: mypy takes no call as a type).
FileKind = DomainFileKind
strawberry.enum(FileKind, description="What a folder entry is.")


@strawberry.type(description="A file or folder in a workspace.")
class FileEntry:
    path: str = strawberry.field(description="Relative to the project root.")
    name: str = strawberry.field(description="The last part of the path.")
    kind: FileKind = strawberry.field(description="File, folder or symbolic link.")
    size: int = strawberry.field(description="Size in bytes.")
    modified_at: datetime = strawberry.field(description="Last modification (UTC).")

    @classmethod
    def from_domain(cls, entry: DomainFileEntry) -> FileEntry:
        return cls(
            path=entry.path,
            name=entry.name,
            kind=entry.kind,
            size=entry.size,
            modified_at=entry.modified_at,
        )


@strawberry.type(description="A folder's entries, sorted by name.")
class Folder:
    path: str = strawberry.field(description="The folder, relative to the project root.")
    entries: list[FileEntry] = strawberry.field(description="Its files and folders (at most 1000).")

    @classmethod
    def from_domain(cls, path: str, entries: list[DomainFileEntry]) -> Folder:
        return cls(path=path, entries=[FileEntry.from_domain(e) for e in entries])


@strawberry.type(description="A UTF-8 text file's content.")
class TextFile:
    path: str = strawberry.field(description="Relative to the project root.")
    content: str = strawberry.field(description="The whole text.")
    size: int = strawberry.field(description="Size in bytes.")

    @classmethod
    def from_domain(cls, text: DomainTextFile) -> TextFile:
        return cls(path=text.path, content=text.content, size=text.size)


@strawberry.type(description="The file was written.")
class FileWritten:
    file: FileEntry = strawberry.field(description="The file as it is now.")


FolderResult = Annotated[Folder | NotFoundError | ValidationError, strawberry.union("FolderResult")]
TextFileResult = Annotated[
    TextFile | NotFoundError | ValidationError | PayloadTooLargeError, strawberry.union("TextFileResult")
]
FileWriteResult = Annotated[
    FileWritten | NotFoundError | ValidationError | PayloadTooLargeError | ForbiddenError,
    strawberry.union("FileWriteResult"),
]
