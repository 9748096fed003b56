"""Jobs recorded in the transaction that causes them (the outbox); the relay sends them after commit."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.db.models import OutboxJob
from youthlink.db.uow import OUTBOX_KEY


async def record_job(session: AsyncSession, name: str, *, later: bool = False, **args: Any) -> int:
    """Record job `name` (`<area>.<verb>`) with JSON arguments (ids as strings, never personal data).

    `later`: not relayed after the commit but left to the outbox sweep (within about 10 s), for a job that
    should try again a little later rather than at once."""
    job = OutboxJob(name=name, args=args)
    session.add(job)
    await session.flush()
    if not later:
        session.info.setdefault(OUTBOX_KEY, []).append(job.id)
    return job.id
