"""One engine per process, built at start-up; sessions never expire objects on commit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_only

from youthlink.config import Settings


def make_engine(url: str, settings: Settings, *, pool_size: int | None = None) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=15,
        connect_args={"server_settings": {"application_name": "youthlink", "timezone": "UTC"}},
    )
    # A PostgreSQL restart costs one failed checkout, not a stack trace per request: every checkout is pinged
    # first. (pool_pre_ping does the same, but for asyncpg in three round trips, BEGIN, `;` and ROLLBACK, and a
    # checkout happens on every request.)
    event.listen(engine.sync_engine, "checkout", _ping)
    return engine


def _ping(dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
    """One round trip outside any transaction; a dead connection is replaced and the checkout retried."""
    try:
        await_only(dbapi_connection.driver_connection.execute("SELECT 1"))
    except Exception as exc:
        raise DisconnectionError(f"connection failed its ping: {type(exc).__name__}") from exc


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
