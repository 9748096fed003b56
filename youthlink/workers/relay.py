"""The outbox relay: hands committed jobs to the broker, and sweeps up any the broker did not take.

A job row stays PENDING until the job itself marks it DONE in the transaction that does the work, so a
message lost by the broker (a restart without persistence) is simply sent again by the sweep.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select

from youthlink.config import get_settings
from youthlink.db.models import OutboxJob
from youthlink.db.models.enums import JobState
from youthlink.db.uow import Database

log = logging.getLogger(__name__)
SWEEP_BATCH = 500
_background: set[asyncio.Task[None]] = set()


def _publish(job_id: int, name: str, args: dict[str, object]) -> bool:
    from youthlink.workers.app import app

    try:
        # No retries here: during a broker outage this fails fast and the sweep sends it later.
        app.send_task(name, kwargs={**args, "outbox_id": job_id}, retry=False)
        return True
    except Exception as exc:  # any broker failure: the row stays PENDING
        log.warning("outbox: broker did not take job %s (%s): %s", job_id, name, type(exc).__name__)
        return False


async def send(db: Database, job_ids: list[int] | None) -> int:
    """Send the given jobs (or, for the sweep, every pending job not sent recently). Returns how many."""
    settings = get_settings()
    loop = asyncio.get_running_loop()
    sent = 0
    async with db.unit_of_work() as session:
        query = select(OutboxJob).where(OutboxJob.state == JobState.PENDING)
        if job_ids is not None:
            query = query.where(OutboxJob.id.in_(job_ids), OutboxJob.sent_at.is_(None))
        else:
            stale = datetime.now(UTC) - timedelta(seconds=settings.outbox_resend_after_seconds)
            query = query.where(or_(OutboxJob.sent_at.is_(None), OutboxJob.sent_at < stale))
        rows = (await session.scalars(
            query.order_by(OutboxJob.id).limit(SWEEP_BATCH).with_for_update(skip_locked=True)
        )).all()
        for row in rows:
            if not await loop.run_in_executor(None, _publish, row.id, row.name, dict(row.args)):
                break  # the broker is down: the rest would fail too; the next sweep tries again
            row.sent_at = datetime.now(UTC)
            sent += 1
    return sent


async def _send_quietly(db: Database, job_ids: list[int]) -> None:
    try:
        await send(db, job_ids)
    except Exception:
        log.exception("outbox: relay failed; the sweep will send the jobs")


def relay_in_background(db: Database) -> Callable[[list[int]], Awaitable[None]]:
    """For the API: send after commit without delaying the response (a broker outage costs users nothing)."""

    async def relay(job_ids: list[int]) -> None:
        # A context of its own: the request's (its shared read session, say) is not the relay's business.
        task = asyncio.get_running_loop().create_task(_send_quietly(db, job_ids), context=contextvars.Context())
        _background.add(task)
        task.add_done_callback(_background.discard)

    return relay


def relay_inline(db: Database) -> Callable[[list[int]], Awaitable[None]]:
    """For jobs and the CLI: the caller's loop may stop right after, so send before returning."""

    async def relay(job_ids: list[int]) -> None:
        await _send_quietly(db, job_ids)

    return relay


async def drain() -> None:
    """Wait for background relays (used at shutdown)."""
    if _background:
        await asyncio.gather(*list(_background), return_exceptions=True)
