"""Typed errors: every expected failure is a union member implementing ``Error``.

Domain exceptions become these in one place, through Strawberry's exception handlers.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

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


DomainErrorT = TypeVar("DomainErrorT", bound=domain.DomainError)
ErrorT = TypeVar("ErrorT", bound=Error)

# Each domain error and the union member it becomes; the member's fields (`message` and the rest) are read from the
# exception's attributes of the same names. Only InvalidInput needs more (its issue paths are renamed), above.
DOMAIN_ERRORS: dict[type[domain.DomainError], type[Error]] = {
    domain.NotFound: NotFoundError,
    domain.Conflict: ConflictError,
    domain.Forbidden: ForbiddenError,
    domain.RateLimited: RateLimitedError,
    domain.WorkerUnavailable: WorkerUnavailableError,
    domain.WorkspaceBusy: WorkspaceBusyError,
    domain.PayloadTooLarge: PayloadTooLargeError,
    domain.WorkspaceError: WorkspaceError,
    domain.TemplatedPipeline: TemplatedPipelineError,
}


class DomainErrorHandler(strawberry.ExceptionHandler[DomainErrorT, ErrorT]):
    """Turns one domain error into its union member (Strawberry applies it where the field's union has that member)."""

    def __init__(self, exception_type: type[DomainErrorT], error_type: type[ErrorT]) -> None:
        # Strawberry's documented way to declare the two types at run time.
        self.exception_type = exception_type
        self.error_type = error_type
        self._names = [f.name for f in dataclasses.fields(error_type)]

    def handle(self, exception: DomainErrorT, *, field: StrawberryField, info: Any) -> ErrorT:
        return self.error_type(**{name: getattr(exception, name) for name in self._names})


EXCEPTION_HANDLERS: tuple[strawberry.ExceptionHandler[Any, Any], ...] = (
    InvalidInputHandler(),
    *(DomainErrorHandler(exception_type, error_type) for exception_type, error_type in DOMAIN_ERRORS.items()),
)
