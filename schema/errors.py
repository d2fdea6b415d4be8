"""Typed errors: every expected failure is a union member implementing ``Error``.

Domain exceptions become these in one place, through Strawberry's exception handlers.
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types.field import StrawberryField

from app.domain import errors as domain


@strawberry.interface(description="An expected failure; `message` says what happened in plain words.")
class Error:
    message: str = strawberry.field(description="What went wrong, for people.")


@strawberry.type(description="The resource does not exist, or is not yours to see.")
class NotFoundError(Error):
    resource: str = strawberry.field(description="The kind of resource: project, pipeline, file, folder.")
    identifier: str = strawberry.field(description="The id or path that was asked for.")


@strawberry.type(description="One problem with the input, located by a field path such as `stages[1].outs[0]`.")
class FieldIssue:
    path: str = strawberry.field(description="Where in the input the problem is.")
    message: str = strawberry.field(description="What is wrong there.")
    stage: str | None = strawberry.field(description="The stage at fault, when one stage is.")


@strawberry.type(description="The input was refused; nothing was stored or changed.")
class ValidationError(Error):
    issues: list[FieldIssue] = strawberry.field(description="Every problem found, not only the first.")


@strawberry.type(description="The request contradicts current state: a duplicate name or a stale version.")
class ConflictError(Error):
    pass


@strawberry.type(description="No worker answered within the bounded wait.")
class WorkerUnavailableError(Error):
    pass


@strawberry.type(description="The workspace is busy with another operation; try again shortly.")
class WorkspaceBusyError(Error):
    pass


@strawberry.type(description="The payload is larger than the server accepts.")
class PayloadTooLargeError(Error):
    limit_bytes: int = strawberry.field(description="The limit in bytes.")


@strawberry.type(description="The workspace could not be prepared, e.g. a repository failed to clone.")
class WorkspaceError(Error):
    pass


@strawberry.type(description="You are a member of the project, but your role does not allow this.")
class ForbiddenError(Error):
    pass


@strawberry.type(description="Too many requests that start work with this token; wait and try again.")
class RateLimitedError(Error):
    retry_after_seconds: int = strawberry.field(description="When the next request will be accepted.")


@strawberry.type(
    description="The pipeline's dvc.yaml uses DVC templating (vars, foreach, matrix, ${...}); a stage-by-stage edit "
    "would expand it, so it was refused and nothing changed. Replace the whole file with `replacePipelineFile`."
)
class TemplatedPipelineError(Error):
    path: str = strawberry.field(description="The dvc.yaml, relative to the project root.")
    constructs: list[str] = strawberry.field(description="The templating constructs that block the edit, each located.")


class NotFoundHandler(strawberry.ExceptionHandler[domain.NotFound, NotFoundError]):
    def handle(self, exception: domain.NotFound, *, field: StrawberryField, info: Any) -> NotFoundError:
        return NotFoundError(message=exception.message, resource=exception.resource, identifier=exception.identifier)


# Domain field names that the GraphQL inputs spell differently.
_INPUT_FIELD_NAMES = {"cmd": "command"}


def graphql_field_path(path: str) -> str:
    """``stages[0].always_changed`` -> ``stages[0].alwaysChanged``: paths name the fields the client sent."""

    def rename(segment: str) -> str:
        name, bracket, index = segment.partition("[")
        name = _INPUT_FIELD_NAMES.get(name, name)
        head, *rest = name.split("_")
        return head + "".join(part.title() for part in rest) + bracket + index

    return ".".join(rename(segment) for segment in path.split("."))


class InvalidInputHandler(strawberry.ExceptionHandler[domain.InvalidInput, ValidationError]):
    def handle(self, exception: domain.InvalidInput, *, field: StrawberryField, info: Any) -> ValidationError:
        message = domain.summarize(exception.issues, graphql_field_path) if exception.summarized else exception.message
        return ValidationError(
            message=message,
            issues=[
                FieldIssue(path=graphql_field_path(i.path), message=i.message, stage=i.stage) for i in exception.issues
            ],
        )


class ConflictHandler(strawberry.ExceptionHandler[domain.Conflict, ConflictError]):
    def handle(self, exception: domain.Conflict, *, field: StrawberryField, info: Any) -> ConflictError:
        return ConflictError(message=exception.message)


class WorkerUnavailableHandler(strawberry.ExceptionHandler[domain.WorkerUnavailable, WorkerUnavailableError]):
    def handle(
        self, exception: domain.WorkerUnavailable, *, field: StrawberryField, info: Any
    ) -> WorkerUnavailableError:
        return WorkerUnavailableError(message=exception.message)


class WorkspaceBusyHandler(strawberry.ExceptionHandler[domain.WorkspaceBusy, WorkspaceBusyError]):
    def handle(self, exception: domain.WorkspaceBusy, *, field: StrawberryField, info: Any) -> WorkspaceBusyError:
        return WorkspaceBusyError(message=exception.message)


class PayloadTooLargeHandler(strawberry.ExceptionHandler[domain.PayloadTooLarge, PayloadTooLargeError]):
    def handle(self, exception: domain.PayloadTooLarge, *, field: StrawberryField, info: Any) -> PayloadTooLargeError:
        return PayloadTooLargeError(message=exception.message, limit_bytes=exception.limit_bytes)


class WorkspaceErrorHandler(strawberry.ExceptionHandler[domain.WorkspaceError, WorkspaceError]):
    def handle(self, exception: domain.WorkspaceError, *, field: StrawberryField, info: Any) -> WorkspaceError:
        return WorkspaceError(message=exception.message)


class ForbiddenHandler(strawberry.ExceptionHandler[domain.Forbidden, ForbiddenError]):
    def handle(self, exception: domain.Forbidden, *, field: StrawberryField, info: Any) -> ForbiddenError:
        return ForbiddenError(message=exception.message)


class RateLimitedHandler(strawberry.ExceptionHandler[domain.RateLimited, RateLimitedError]):
    def handle(self, exception: domain.RateLimited, *, field: StrawberryField, info: Any) -> RateLimitedError:
        return RateLimitedError(message=exception.message, retry_after_seconds=exception.retry_after_seconds)


class TemplatedPipelineHandler(strawberry.ExceptionHandler[domain.TemplatedPipeline, TemplatedPipelineError]):
    def handle(
        self, exception: domain.TemplatedPipeline, *, field: StrawberryField, info: Any
    ) -> TemplatedPipelineError:
        return TemplatedPipelineError(message=exception.message, path=exception.path, constructs=exception.constructs)


EXCEPTION_HANDLERS = (
    TemplatedPipelineHandler(),
    ForbiddenHandler(),
    RateLimitedHandler(),
    NotFoundHandler(),
    InvalidInputHandler(),
    ConflictHandler(),
    WorkerUnavailableHandler(),
    WorkspaceBusyHandler(),
    PayloadTooLargeHandler(),
    WorkspaceErrorHandler(),
)
