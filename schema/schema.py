"""The root Query and Mutation, composed from the domain classes, and the Schema."""

from __future__ import annotations

import logging
from collections.abc import Callable

import strawberry
from graphql import ASTValidationRule
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as query_depth_rule

from app.settings import Settings
from schema.errors import EXCEPTION_HANDLERS
from schema.experiments.mutations import ExperimentMutations
from schema.experiments.queries import ExperimentQueries
from schema.experiments.subscriptions import ExperimentSubscriptions
from schema.files.mutations import FileMutations
from schema.masking import PublicErrors
from schema.pipelines.mutations import PipelineMutations
from schema.pipelines.queries import PipelineQueries
from schema.projects.mutations import ProjectMutations
from schema.projects.queries import ProjectQueries
from schema.results.mutations import HistoryMutations
from schema.results.queries import ResultQueries
from schema.runs.mutations import RunMutations
from schema.runs.queries import RunQueries
from schema.runs.subscriptions import RunSubscriptions
from schema.shared_results import execution_context_class
from schema.users.mutations import UserMutations
from schema.users.queries import UserQueries
from schema.ws_guard import WebSocketGuard

logger = logging.getLogger(__name__)

CACHED_DOCUMENTS = 1024


@strawberry.type(description="Read projects, pipelines, their status, runs and workspace files.")
class Query(UserQueries, ProjectQueries, PipelineQueries, RunQueries, ResultQueries, ExperimentQueries):
    pass


@strawberry.type(description="Define, validate, dry-run and run pipelines; manage projects and files.")
class Mutation(
    ProjectMutations,
    PipelineMutations,
    RunMutations,
    FileMutations,
    UserMutations,
    HistoryMutations,
    ExperimentMutations,
):
    pass


@strawberry.type(description="Follow runs and experiments live.")
class Subscription(RunSubscriptions, ExperimentSubscriptions):
    pass


def build_schema(settings: Settings) -> strawberry.Schema:
    """The schema with the limits that keep one request from costing the server too much."""
    # Strawberry's QueryDepthLimiter and MaxAliasesLimiter build a new rule class per request, and the validation
    # cache is keyed by the rule classes: built once here, every request's validation of a known document is a hit.
    limits: list[type[ASTValidationRule]] = [
        query_depth_rule(settings.max_query_depth, should_ignore=None),
        max_aliases_rule(settings.max_aliases),
    ]
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: WebSocketGuard(max_operations_per_user=settings.ws_max_operations_per_user),
        lambda: AddValidationRules(limits),
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        PublicErrors,
        # Dashboards and clients send the same few documents over and over: parse and validate each once.
        # The parsed document being the same object is also what lets subscription results be shared.
        lambda: ParserCache(maxsize=CACHED_DOCUMENTS),
        lambda: ValidationCache(maxsize=CACHED_DOCUMENTS),
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        exception_handlers=EXCEPTION_HANDLERS,
        execution_context_class=execution_context_class(),
    )
