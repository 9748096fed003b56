"""One engine per process, built at start-up; sessions never expire objects on commit."""

from __future__ import annotations

import time
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_only

from youthlink.config import Settings


def make_engine(url: str, settings: Settings, *, pool_size: int | None = None, role: str = "cli") -> AsyncEngine:
    """`role` (api, worker, cli) names the connections in pg_stat_activity: `youthlink-<role>`."""
    engine = create_async_engine(
        url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=15,
        json_deserializer=orjson.loads,  # JSON columns (explanations, payloads) are read on hot paths
        connect_args={"server_settings": {"application_name": f"youthlink-{role}", "timezone": "UTC"}},
    )
    # Connections PostgreSQL dropped while they sat idle (a restart, a failover) must not cost a request: a
    # checkout of a connection idle for a while is pinged first and, if dead, replaced. A connection back in the
    # pool only milliseconds ago (the busy case, where the extra round trip would cost the most) is not pinged:
    # a restart in the middle of traffic fails the requests in flight and those in the next second.
    # pool_pre_ping would ping every checkout, and for asyncpg in three round trips (BEGIN, `;`, ROLLBACK).
    event.listen(engine.sync_engine, "connect", _fresh)
    event.listen(engine.sync_engine, "checkin", _fresh)
    event.listen(engine.sync_engine, "checkout", _ping_if_idle)
    return engine


PING_AFTER_IDLE_SECONDS = 1.0
_IDLE_SINCE = "youthlink_idle_since"


def _fresh(dbapi_connection: Any, connection_record: Any) -> None:
    connection_record.info[_IDLE_SINCE] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
    """One round trip outside any transaction; a dead connection is replaced and the checkout retried."""
    idle_since = connection_record.info.get(_IDLE_SINCE)
    if idle_since is not None and time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
        return
    try:
        await_only(dbapi_connection.driver_connection.execute("SELECT 1"))
    except Exception as exc:
        raise DisconnectionError(f"connection failed its ping: {type(exc).__name__}") from exc


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
