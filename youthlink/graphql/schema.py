"""The schema and its guards: depth, alias and token limits, cached parsing/validation, masked errors."""

from __future__ import annotations

from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
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

from youthlink.config import Settings, get_settings
from youthlink.graphql.hours import HoursMutation, HoursQuery
from youthlink.graphql.mutations import Mutation
from youthlink.graphql.queries import Query
from youthlink.graphql.types import Organization, Project, ServiceRecord, Signup, Task, Team, Town, Volunteer

# Each area adds its root fields in its own module; the schema merges them here.
QUERY_PARTS: tuple[type, ...] = (Query, HoursQuery)
MUTATION_PARTS: tuple[type, ...] = (Mutation, HoursMutation)
NODE_TYPES = [Town, Organization, Team, Project, Task, Signup, Volunteer, ServiceRecord]


def should_mask(error: GraphQLError) -> bool:
    """Mask only unexpected exceptions: validation, limits and our own refusals keep their messages."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or get_settings()
    extensions: list[Any] = [
        partial(QueryDepthLimiter, max_depth=settings.graphql_max_depth),
        partial(MaxAliasesLimiter, max_alias_count=settings.graphql_max_aliases),
        partial(MaxTokensLimiter, max_token_count=settings.graphql_max_tokens),
        partial(ParserCache, maxsize=512),
        partial(ValidationCache, maxsize=512),
        partial(MaskErrors, should_mask_error=should_mask, error_message="服务器内部错误 (internal error)"),
    ]
    if settings.env == "production":
        extensions.append(DisableIntrospection)
    return strawberry.Schema(
        query=merge_types("Query", QUERY_PARTS), mutation=merge_types("Mutation", MUTATION_PARTS),
        types=NODE_TYPES, extensions=extensions,
        config=StrawberryConfig(auto_camel_case=True),
    )


def schema_sdl() -> str:
    return build_schema().as_str() + "\n"

