"""The schema and its guards: depth, alias and token limits, cached parsing/validation, masked errors."""

from __future__ import annotations

from functools import partial
from typing import Any

import strawberry
from graphql import ASTValidationRule, ExecutableDefinitionNode, GraphQLError
from graphql.validation import ASTValidationContext
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionResult

from youthlink.config import Settings, get_settings
from youthlink.errors import DomainError
from youthlink.graphql.accounts import AccountsMutation
from youthlink.graphql.hours import HoursMutation, HoursQuery
from youthlink.graphql.management import ManagementMutation
from youthlink.graphql.matching import MatchingMutation, MatchingQuery
from youthlink.graphql.mutations import Mutation
from youthlink.graphql.queries import Query
from youthlink.graphql.types import (
    Organization,
    Project,
    ServiceRecord,
    Signup,
    Task,
    Team,
    TeamMembership,
    Town,
    Volunteer,
)

# Each area adds its root fields in its own module; the schema merges them here.
QUERY_PARTS: tuple[type, ...] = (Query, HoursQuery, MatchingQuery)
MUTATION_PARTS: tuple[type, ...] = (Mutation, AccountsMutation, ManagementMutation, HoursMutation, MatchingMutation)
NODE_TYPES = [Town, Organization, Team, TeamMembership, Project, Task, Signup, Volunteer, ServiceRecord]


def should_mask(error: GraphQLError) -> bool:
    """Mask only unexpected exceptions: validation, limits and our own refusals keep their messages."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError | DomainError)


MASKED_MESSAGE = "服务器内部错误 (internal error)"


def unless_fragments_unknown(rule: type[ASTValidationRule]) -> type[ASTValidationRule]:
    """`rule`, skipped on a document that spreads a fragment it does not define.

    strawberry's depth limiter looks each spread up by name and raises KeyError on `{ ...Nope }`, and an
    exception raised during validation escapes MaskErrors, so the client read `'Nope'`. graphql-core's
    KnownFragmentNamesRule already refuses such a document with "Unknown fragment 'Nope'."
    """

    class Guarded(rule):  # type: ignore[valid-type,misc]
        def __init__(self, context: ASTValidationContext) -> None:
            spreads = (spread for definition in context.document.definitions
                       if isinstance(definition, ExecutableDefinitionNode)
                       for spread in context.get_fragment_spreads(definition.selection_set))
            if all(context.get_fragment(spread.name.value) is not None for spread in spreads):
                super().__init__(context)
            else:
                ASTValidationRule.__init__(self, context)

    Guarded.__name__ = Guarded.__qualname__ = f"{rule.__name__}UnlessFragmentsUnknown"
    return Guarded


def guard_rules(settings: Settings) -> tuple[type[ASTValidationRule], ...]:
    """Depth and alias limits as validation rules, built once per schema.

    The limiter extensions build a new rule class per instance, that is per request, and the validation
    cache is keyed by the rule classes: passed as factories, it never hit. Their rules are taken once here.
    """
    depth = QueryDepthLimiter(max_depth=settings.graphql_max_depth).validation_rules
    aliases = MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules
    return (*(unless_fragments_unknown(rule) for rule in depth), *aliases)


class GuardedSchema(strawberry.Schema):
    """A schema whose results never carry an unexpected exception's text.

    MaskErrors sees only what ends inside its operation hook; an exception raised while parsing or validating
    (a bug in a rule, say) bypasses it and reaches the client as `str(exc)`. The same policy is applied here to
    the final result. strawberry has already logged the original error with its traceback.
    """

    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        result = await super().execute(*args, **kwargs)
        if result.errors and any(should_mask(error) for error in result.errors):
            result.errors = [masked(error) if should_mask(error) else error for error in result.errors]
        return result


def masked(error: GraphQLError) -> GraphQLError:
    return GraphQLError(MASKED_MESSAGE, nodes=error.nodes, source=error.source, positions=error.positions,
                        path=error.path)


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or get_settings()
    extensions: list[Any] = [
        partial(AddValidationRules, list(guard_rules(settings))),
        partial(MaxTokensLimiter, max_token_count=settings.graphql_max_tokens),
        partial(ParserCache, maxsize=512),
        partial(ValidationCache, maxsize=512),
        partial(MaskErrors, should_mask_error=should_mask, error_message=MASKED_MESSAGE),
    ]
    if settings.env == "production":
        extensions.append(DisableIntrospection)
    return GuardedSchema(
        query=merge_types("Query", QUERY_PARTS), mutation=merge_types("Mutation", MUTATION_PARTS),
        types=NODE_TYPES, extensions=extensions,
        config=StrawberryConfig(auto_camel_case=True),
    )


def schema_sdl() -> str:
    return build_schema().as_str() + "\n"

