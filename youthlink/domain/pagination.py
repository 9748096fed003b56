"""Keyset pagination: `ORDER BY (sort key, id) LIMIT first + 1`, opaque cursors, `first` capped."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import ColumnElement, and_, or_, tuple_
from sqlalchemy.orm import QueryableAttribute

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


Columns = Sequence[ColumnElement[Any] | QueryableAttribute[Any]]


def keyset_after(columns: Columns, values: Sequence[Any], descending: bool = False) -> ColumnElement[bool]:
    """Rows strictly after `values` in (columns...) order. Ascending uses a row comparison an index can use."""
    if not descending:
        return columns[0] > values[0] if len(columns) == 1 else tuple_(*columns) > tuple_(*values)
    clauses = [
        and_(*[columns[j] == values[j] for j in range(i)], columns[i] < values[i]) for i in range(len(columns))
    ]
    return or_(*clauses)
