"""One engine per process, built at start-up; sessions never expire objects on commit."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from youthlink.config import Settings


def make_engine(url: str, settings: Settings, *, pool_size: int | None = None) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,  # a PostgreSQL restart costs one failed checkout, not a stack trace per request
        pool_timeout=15,
        connect_args={"server_settings": {"application_name": "youthlink", "timezone": "UTC"}},
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
