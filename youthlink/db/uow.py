"""The unit of work: one transaction per mutation or job; outbox jobs are handed on only after commit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from youthlink.db.engine import make_sessionmaker

log = logging.getLogger(__name__)

# Called with the ids of outbox jobs a committed transaction recorded; must not raise.
JobRelay = Callable[[list[int]], Awaitable[None]]

OUTBOX_KEY = "outbox_job_ids"

# The read session of the GraphQL operation being executed, if any (see RequestReads).
_REQUEST_READS: ContextVar[RequestReads | None] = ContextVar("youthlink_request_reads", default=None)


class Database:
    def __init__(self, engine: AsyncEngine, relay: JobRelay | None = None) -> None:
        self.engine = engine
        self.sessionmaker: async_sessionmaker[AsyncSession] = make_sessionmaker(engine)
        # Reads run each statement on its own (no BEGIN, nothing to roll back when the session closes): two
        # round trips fewer per read session, and GraphQL opens one per root field and loader batch.
        self.read_sessionmaker = make_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))
        self.relay = relay
        # Called after each commit of a unit of work (e.g. the API's cache of public answers empties itself).
        self.commit_listeners: list[Callable[[], None]] = []

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """Commit on success, roll back on any exception; then relay the jobs the commit made durable."""
        async with _stepping_aside(), self.sessionmaker() as session:
            async with session.begin():
                yield session
            job_ids: list[int] = session.info.pop(OUTBOX_KEY, [])
        for listener in self.commit_listeners:
            listener()
        if job_ids and self.relay is not None:
            await self.relay(job_ids)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A short read-only session of its own (GraphQL reads share the request's: RequestReads)."""
        async with _stepping_aside(), self.read_sessionmaker() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


class RequestReads:
    """The read session of one GraphQL request, lent to one coroutine at a time.

    GraphQL resolves sibling fields and DataLoader batches concurrently, and neither an AsyncSession nor the
    asyncpg connection under it may be used by two coroutines at once. A session per root field and per batch
    kept that rule but cost a pool checkout (with its ping) each: five or six per request, and under load the
    pool's overflow connections were opened and closed again all the time. Here the root fields and batches of
    one request take turns (an asyncio.Lock) on one session, checked out at its first statement and given back
    when the operation ends (GuardedSchema.execute): each batch is a statement or two on a local server, so
    waiting for one's turn costs less than a checkout did.

    A request must never hold a connection while it waits for another: with 200 concurrent sign-ups, each
    holding its read connection while its mutation waited for one to write with, the pool ran dry. So whenever
    the operation opens a session of its own (Database.unit_of_work or Database.read: a mutation, an audited
    read), the shared connection goes back to the pool first, or at the end of the turn in progress, and
    turns give it back until that session is closed; the next turn checks out anew.

    Reads run in autocommit (no transaction: each statement sees what is committed when it runs, as before),
    and the identity map is emptied after each turn, so no batch sees another's (possibly older) objects.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = asyncio.Lock()
        self._session: AsyncSession | None = None
        self._aside = 0  # sessions of its own the operation has open (see the class's docstring)
        # The operation is over (close() was called). Work it left running may still read (graphql-core settles
        # a failed field's siblings in the background): each such turn then gives its connection back itself.
        self._closed = False

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._lock:
            if self._session is None:
                self._session = self.db.read_sessionmaker()
            session = self._session
            try:
                yield session
            except BaseException:
                # After a failed statement the connection's state is unknown: give it back, start afresh.
                self._session = None
                await session.close()
                raise
            if self._aside or self._closed:
                self._session = None
                await session.close()
            else:
                session.expunge_all()

    @contextmanager
    def current(self) -> Iterator[None]:
        """While executing the operation: sessions opened through Database make way for them (see above)."""
        token = _REQUEST_READS.set(self)
        try:
            yield
        finally:
            _REQUEST_READS.reset(token)

    async def close(self) -> None:
        """Give the connection back to the pool (the operation is over); safe to call more than once. A turn
        taken afterwards still has a session, closed again at the end of that turn."""
        self._closed = True
        async with self._lock:
            session, self._session = self._session, None
            if session is not None:
                await session.close()


@asynccontextmanager
async def _stepping_aside() -> AsyncIterator[None]:
    """Around a session of its own: the request's shared read connection (if any) goes back to the pool."""
    reads = _REQUEST_READS.get()
    if reads is None:
        yield
        return
    reads._aside += 1
    try:
        if not reads._lock.locked() and reads._session is not None:
            session, reads._session = reads._session, None
            await session.close()
        yield
    finally:
        reads._aside -= 1
