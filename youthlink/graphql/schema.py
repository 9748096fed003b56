"""The schema and its guards: depth, alias and token limits, cached parsing/validation, masked errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from datetime import datetime
from functools import partial
from typing import Any, ClassVar

import strawberry
from graphql import ASTValidationRule, ExecutableDefinitionNode, GraphQLError
from graphql.validation import ASTValidationContext
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import validate_document
from strawberry.tools import merge_types
from strawberry.types import ExecutionResult

from youthlink.config import Settings, get_settings
from youthlink.db.uow import RequestReads
from youthlink.errors import DomainError
from youthlink.graphql.accounts import AccountsMutation
from youthlink.graphql.execution import LeanExecutionContext
from youthlink.graphql.hours import HoursMutation, HoursQuery
from youthlink.graphql.management import ManagementMutation
from youthlink.graphql.matching import MatchingMutation, MatchingQuery
from youthlink.graphql.mutations import Mutation
from youthlink.graphql.outcomes import OutcomesMutation
from youthlink.graphql.public_cache import PublicResponseCache
from youthlink.graphql.queries import Query
from youthlink.graphql.types import (
    CITY_DATETIME,
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
MUTATION_PARTS: tuple[type, ...] = (Mutation, AccountsMutation, ManagementMutation, HoursMutation, MatchingMutation,
                                    OutcomesMutation)
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


class TextValidationCache(SchemaExtension):
    """Validation results cached by the query's text.

    strawberry's ValidationCache keys its LRU cache on the parsed document, and hashing a graphql-core
    document walks its whole syntax tree, on every request: about 80,000 hash calls (1-2 ms) for a client that
    sends its whole operations file. The document is a function of the text (ParserCache, same parse options),
    so the text, the schema and the rule classes make the key.
    """

    _results: ClassVar[dict[tuple[Any, ...], list[GraphQLError]]] = {}
    maxsize = 512

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and context.graphql_document is not None:
            key = (id(context.schema._schema), context.query, context.validation_rules)
            errors = self._results.get(key)
            if errors is None:
                errors = validate_document(context.schema._schema, context.graphql_document,
                                           context.validation_rules)
                if len(self._results) >= self.maxsize:
                    self._results.clear()
                self._results[key] = errors
            context.pre_execution_errors = list(errors)
        yield


def is_database_outage(error: BaseException | None) -> bool:
    """PostgreSQL down, restarting or dropping the connection mid-statement (not a bug, not the client's fault)."""
    if isinstance(error, DBAPIError):
        return bool(error.connection_invalidated) or isinstance(error, OperationalError | InterfaceError)
    return isinstance(error, SQLAlchemyTimeoutError | ConnectionError)


class DatabaseOutage(SchemaExtension):
    """Notes a database outage among the operation's errors, before MaskErrors hides them (listed after it,
    this hook is left first): GuardedSchema.execute then raises it, and the app answers 503 with Retry-After
    (api.app), so a client retries instead of showing an internal error. A write rolled back with it."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        context = self.execution_context.context
        if result is None or not result.errors or context is None:
            return
        outage = next((e.original_error for e in result.errors if is_database_outage(e.original_error)), None)
        if outage is not None:
            context.database_outage = outage


class GuardedSchema(strawberry.Schema):
    """A schema whose results never carry an unexpected exception's text.

    MaskErrors sees only what ends inside its operation hook; an exception raised while parsing or validating
    (a bug in a rule, say) bypasses it and reaches the client as `str(exc)`. The same policy is applied here to
    the final result. strawberry has already logged the original error with its traceback.

    It also gives the request's read connection back as soon as the operation ends, and answers public
    queries from the app's short-lived cache when it has them (public_cache).
    """

    # Answers to public queries kept for a few seconds (set by the app: api.app.create_app).
    public_cache: PublicResponseCache | None = None

    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        context = kwargs.get("context_value")
        cache, key, generation = self.public_cache, None, 0
        actor = getattr(context, "actor", None)
        reads: RequestReads | None = getattr(context, "reads", None)
        try:
            if cache is not None and actor is not None:
                query = args[0] if args else kwargs.get("query")
                key = cache.key(query, kwargs.get("operation_name"), kwargs.get("variable_values"), actor)
                answer = cache.get(key) if key is not None else None
                if answer is not None:
                    return ExecutionResult(data=answer, errors=None)
                generation = cache.generation
            with reads.current() if reads is not None else nullcontext():
                result = await super().execute(*args, **kwargs)
        finally:
            # The operation is over: its read connection goes back to the pool now, not after the response has
            # been written (the next request of a busy client would otherwise need a connection more).
            if reads is not None:
                await reads.close()
        outage = getattr(context, "database_outage", None)
        if outage is not None:
            raise outage
        if result.errors and any(should_mask(error) for error in result.errors):
            result.errors = [masked(error) if should_mask(error) else error for error in result.errors]
        if cache is not None and key is not None and not result.errors and result.data is not None:
            cache.put(key, generation, result.data)
        return result


def masked(error: GraphQLError) -> GraphQLError:
    return GraphQLError(MASKED_MESSAGE, nodes=error.nodes, source=error.source, positions=error.positions,
                        path=error.path)


def build_schema(settings: Settings | None = None) -> GuardedSchema:
    settings = settings or get_settings()
    extensions: list[Any] = [
        partial(AddValidationRules, list(guard_rules(settings))),
        partial(MaxTokensLimiter, max_token_count=settings.graphql_max_tokens),
        partial(ParserCache, maxsize=512),
        TextValidationCache,
        partial(MaskErrors, should_mask_error=should_mask, error_message=MASKED_MESSAGE),
        DatabaseOutage,  # after MaskErrors: sees the errors before they are masked
    ]
    if settings.env == "production":
        extensions.append(DisableIntrospection)
    return GuardedSchema(
        query=merge_types("Query", QUERY_PARTS), mutation=merge_types("Mutation", MUTATION_PARTS),
        types=NODE_TYPES, extensions=extensions, execution_context_class=LeanExecutionContext,
        config=StrawberryConfig(auto_camel_case=True), scalar_overrides={datetime: CITY_DATETIME},
    )


def schema_sdl() -> str:
    return build_schema().as_str() + "\n"

