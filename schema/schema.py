"""The root Query and Mutation, composed from the domain classes, and the Schema."""

from __future__ import annotations

import logging

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from app.domain.errors import DomainError
from schema.errors import EXCEPTION_HANDLERS
from schema.files.mutations import FileMutations
from schema.pipelines.mutations import PipelineMutations
from schema.pipelines.queries import PipelineQueries
from schema.projects.mutations import ProjectMutations
from schema.projects.queries import ProjectQueries
from schema.runs.mutations import RunMutations
from schema.runs.queries import RunQueries
from schema.runs.subscriptions import RunSubscriptions

logger = logging.getLogger(__name__)


@strawberry.type(description="Read projects, pipelines, their status, runs and workspace files.")
class Query(ProjectQueries, PipelineQueries, RunQueries):
    pass


@strawberry.type(description="Define, validate, dry-run and run pipelines; manage projects and files.")
class Mutation(ProjectMutations, PipelineMutations, RunMutations, FileMutations):
    pass


@strawberry.type(description="Follow runs live.")
class Subscription(RunSubscriptions):
    pass


def _should_mask(error: GraphQLError) -> bool:
    """Hide internals of unexpected failures; keep GraphQL's own errors and domain messages readable."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return False  # syntax and validation errors of the query itself
    if isinstance(original, DomainError):
        return False  # written for users
    logger.error("unexpected error at %s", error.path, exc_info=original)
    return True


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=[lambda: MaskErrors(should_mask_error=_should_mask, error_message="Internal server error.")],
    exception_handlers=EXCEPTION_HANDLERS,
)
