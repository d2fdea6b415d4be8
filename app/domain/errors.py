"""Expected outcomes that are not successes. Each maps to one typed GraphQL error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem with user input, located by a field path such as ``stages[1].outs[0]``."""

    path: str
    message: str
    stage: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"path": self.path, "message": self.message, "stage": self.stage}

    @classmethod
    def from_dict(cls, data: dict[str, str | None]) -> Issue:
        return cls(path=str(data["path"]), message=str(data["message"]), stage=data.get("stage"))


class DomainError(Exception):
    """Base of every expected, user-facing failure."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    def __init__(self, resource: str, identifier: str) -> None:
        super().__init__(f"{resource} {identifier!r} was not found")
        self.resource = resource
        self.identifier = identifier


class InvalidInput(DomainError):
    def __init__(self, issues: list[Issue], message: str | None = None) -> None:
        super().__init__(message or summarize(issues))
        self.issues = issues
        self.summarized = message is None
        """True when the message only lists the issues (so a renderer may list them its own way)."""


def summarize(issues: list[Issue], path_of: Callable[[str], str] = str) -> str:
    return "; ".join(f"{path_of(i.path)}: {i.message}" for i in issues[:5]) or "invalid input"


class Conflict(DomainError):
    """The request contradicts current state: a duplicate name or a stale version."""


class Unauthenticated(DomainError):
    """No valid API token came with the request."""


class Forbidden(DomainError):
    """The caller is a member of the project, but their role does not allow this."""


class RateLimited(DomainError):
    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"too many requests that start work; try again in {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


class WorkerUnavailable(DomainError):
    """No worker answered within the bounded wait; nothing was changed by this request."""


class WorkspaceBusy(DomainError):
    """The workspace is locked by another operation for longer than we are willing to wait."""


class PayloadTooLarge(DomainError):
    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"payload exceeds the limit of {limit_bytes} bytes")
        self.limit_bytes = limit_bytes


class WorkspaceError(DomainError):
    """The workspace could not be prepared (for example a repository failed to clone)."""


class TemplatedPipeline(DomainError):
    """A stage-by-stage edit of a dvc.yaml that uses DVC's templating would expand it; the edit was refused."""

    def __init__(self, path: str, constructs: list[str]) -> None:
        super().__init__(
            f"{path} uses DVC templating ({'; '.join(constructs)}): editing its stages one by one would write "
            "them expanded and lose the templates; replace the whole file with replacePipelineFile instead"
        )
        self.path = path
        self.constructs = constructs
