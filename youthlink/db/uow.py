"""The unit of work: one transaction per mutation or job; outbox jobs are handed on only after commit."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from youthlink.db.engine import make_sessionmaker

log = logging.getLogger(__name__)

# Called with the ids of outbox jobs a committed transaction recorded; must not raise.
JobRelay = Callable[[list[int]], Awaitable[None]]

OUTBOX_KEY = "outbox_job_ids"


class Database:
    def __init__(self, engine: AsyncEngine, relay: JobRelay | None = None) -> None:
        self.engine = engine
        self.sessionmaker: async_sessionmaker[AsyncSession] = make_sessionmaker(engine)
        # Reads run each statement on its own (no BEGIN, nothing to roll back when the session closes): two
        # round trips fewer per read session, and GraphQL opens one per root field and loader batch.
        self.read_sessionmaker = make_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))
        self.relay = relay

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """Commit on success, roll back on any exception; then relay the jobs the commit made durable."""
        async with self.sessionmaker() as session:
            async with session.begin():
                yield session
            job_ids: list[int] = session.info.pop(OUTBOX_KEY, [])
        if job_ids and self.relay is not None:
            await self.relay(job_ids)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A short read-only session (one per root field / loader batch: sessions are never shared)."""
        async with self.read_sessionmaker() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
