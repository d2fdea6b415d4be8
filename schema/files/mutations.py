"""Mutations that write workspace files."""

from __future__ import annotations

from typing import cast

import strawberry
from strawberry.file_uploads import Upload

from app.services.files import AsyncReadable
from schema.context import Info
from schema.files.types import FileEntry, FileWriteResult, FileWritten


@strawberry.input(description="A text file to write (created or replaced), e.g. params.yaml or a script.")
class WriteFileInput:
    project_id: strawberry.ID = strawberry.field(description="The project.")
    path: str = strawberry.field(description="Relative to the project root; folders are created.")
    content: str = strawberry.field(description="The whole new content, UTF-8.")


@strawberry.type
class FileMutations:
    @strawberry.mutation(description="Write a small text file into a workspace.")
    async def write_file(self, info: Info, input: WriteFileInput) -> FileWriteResult:
        entry = await info.context.services.files.write_text(
            caller=info.context.caller, project_id=input.project_id, path=input.path, content=input.content
        )
        return FileWritten(file=FileEntry.from_domain(entry))

    @strawberry.mutation(
        description="Upload a file (GraphQL multipart request), streamed to disk; replaces an existing file."
    )
    async def upload_file(self, info: Info, project_id: strawberry.ID, path: str, file: Upload) -> FileWriteResult:
        # Strawberry declares Upload as bytes; on Starlette the value is an UploadFile, read in chunks.
        source = cast(AsyncReadable, file)
        entry = await info.context.services.files.upload(
            caller=info.context.caller, project_id=project_id, path=path, source=source
        )
        return FileWritten(file=FileEntry.from_domain(entry))
