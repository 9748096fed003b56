"""The request's shared read session (db.uow.RequestReads): every connection it checks out goes back to the pool."""

from __future__ import annotations

import asyncio
from typing import Any

import strawberry
from sqlalchemy import text
from strawberry.types import Info

from youthlink.domain.actor import ANONYMOUS
from youthlink.graphql.context import Context
from youthlink.graphql.schema import GuardedSchema


async def _select_one_later(info: Info, delay: float) -> int:
    await asyncio.sleep(delay)
    async with info.context.reads.session() as session:
        return int((await session.execute(text("SELECT 1"))).scalar_one())


@strawberry.type
class Query:
    @strawberry.field
    async def later(self, info: Info) -> int:
        return await _select_one_later(info, 0.1)

    @strawberry.field
    def broken(self) -> int:
        raise ValueError("no")

    @strawberry.field
    async def broken_later(self) -> int:
        await asyncio.sleep(0.02)
        raise ValueError("no")

    @strawberry.field
    async def slow_statement(self, info: Info) -> int:
        async with info.context.reads.session() as session:
            return int((await session.execute(text("SELECT 1 FROM pg_sleep(0.3)"))).scalar_one())


async def _settled(db: Any, checked_out: int) -> int:
    await asyncio.sleep(0.4)  # (what was left running has run)
    for _ in range(50):
        await asyncio.sleep(0.02)
        if db.engine.pool.checkedout() == checked_out:
            break
    return int(db.engine.pool.checkedout())


async def test_work_left_running_after_the_operation_gives_its_connection_back(db: Any) -> None:
    # given an operation whose non-null field fails at once while a sibling has yet to read: graphql-core
    # answers `data: null` at once and leaves the sibling to settle in the background
    schema = GuardedSchema(query=Query)
    checked_out = db.engine.pool.checkedout()
    context = Context(db=db, actor=ANONYMOUS)

    # when the operation ends and the request closes its reads (GuardedSchema.execute, then api.app's
    # graphql_context), before the sibling has run
    result = await schema.execute("{ later broken }", context_value=context)
    await context.reads.close()
    assert result.data is None

    # then the sibling's late read still gives its connection back
    assert await _settled(db, checked_out) == checked_out


async def test_a_turn_cancelled_mid_statement_gives_its_connection_back(db: Any) -> None:
    # given a sibling's failure cancelling a field whose statement is running (gather_with_cancel)
    schema = GuardedSchema(query=Query)
    checked_out = db.engine.pool.checkedout()
    context = Context(db=db, actor=ANONYMOUS)
    result = await schema.execute("{ slowStatement brokenLater }", context_value=context)
    await context.reads.close()
    assert result.data is None

    # then the connection is back in the pool, and the next request reads as usual
    assert await _settled(db, checked_out) == checked_out
    context = Context(db=db, actor=ANONYMOUS)
    try:
        assert (await schema.execute("{ later }", context_value=context)).data == {"later": 1}
    finally:
        await context.reads.close()
    assert await _settled(db, checked_out) == checked_out
