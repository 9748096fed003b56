"""Keyset pagination: `ORDER BY (sort key, id) LIMIT first + 1`, opaque cursors, `first` capped."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import ColumnElement, Select, and_, or_, tuple_

from youthlink.errors import Invalid

MAX_PAGE = 100
DEFAULT_PAGE = 20
T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    cursors: list[str]
    has_next: bool
    total_count: int


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE
    if first < 0 or first > MAX_PAGE:
        raise Invalid("INVALID_PAGE_SIZE", f"first 须在 0 到 {MAX_PAGE} 之间", "first")
    return first


def encode_cursor(values: Sequence[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, uuid.UUID) else v
             for v in values]
    return base64.urlsafe_b64encode(orjson.dumps(plain)).decode()


def decode_cursor(cursor: str, kinds: Sequence[type]) -> list[Any]:
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(raw, list) or len(raw) != len(kinds):
            raise ValueError
        out: list[Any] = []
        for value, kind in zip(raw, kinds, strict=True):
            if kind is datetime:
                out.append(datetime.fromisoformat(value))
            elif kind is uuid.UUID:
                out.append(uuid.UUID(value))
            else:
                out.append(kind(value))
        return out
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise Invalid("INVALID_CURSOR", "分页游标无效", "after") from None


def after_clause(columns: Sequence[ColumnElement[Any]], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after `values` in ascending (columns...) order: a row comparison the index can use."""
    if len(columns) == 1:
        return columns[0] > values[0]
    return tuple_(*columns) > tuple_(*values)


def descending_after(columns: Sequence[ColumnElement[Any]], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after `values` in descending order."""
    clauses = []
    for i, column in enumerate(columns):
        equal = [columns[j] == values[j] for j in range(i)]
        clauses.append(and_(*equal, column < values[i]))
    return or_(*clauses)


def keyset(query: Select[Any], first: int) -> Select[Any]:
    return query.limit(first + 1)
