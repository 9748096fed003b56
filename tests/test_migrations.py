"""The Alembic chain builds exactly the schema the models describe, and can be walked down and up again."""

from __future__ import annotations

import asyncio
import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

import youthlink.db.models  # noqa: F401
from tests import services as svc
from youthlink.db.base import Base
from youthlink.db.migrate import downgrade, upgrade


def _differences(url: str) -> list[object]:
    async def compare() -> list[object]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                def diff(sync: Connection) -> list[object]:
                    context = MigrationContext.configure(sync, opts={"compare_type": True})
                    return list(compare_metadata(context, Base.metadata))

                return await connection.run_sync(diff)
        finally:
            await engine.dispose()

    return asyncio.run(compare())


def _entries_storage(url: str) -> str:
    """How PostgreSQL stores matching_decisions.entries (models cannot say it, so compare_metadata does not)."""
    async def read() -> str:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return str(await connection.scalar(text(
                    "SELECT attstorage::text FROM pg_attribute"
                    " WHERE attrelid = 'matching_decisions'::regclass AND attname = 'entries'")))
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_migrations_match_the_models_and_walk_down_and_up(services: svc.Services) -> None:
    # given a scratch database on the same server
    name = f"youthlink_migrations_{uuid.uuid4().hex[:8]}"
    asyncio.run(svc._create_database(services.admin_dsn, name))
    url = svc._with_database(services.database_url, name)
    try:
        # when the whole chain is applied, then the schema is what the models say
        upgrade(url)
        assert _differences(url) == []
        # and the decisions' entries are stored without compression: at city scale pglz took 5.9 s to store
        # them, EXTERNAL 0.9 s
        assert _entries_storage(url) == "e"
        # and it walks down to nothing and up again
        downgrade(url, "base")
        upgrade(url)
        assert _differences(url) == []
    finally:
        asyncio.run(svc._drop_database(services.admin_dsn, name))
