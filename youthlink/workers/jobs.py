"""Jobs: thin shims that take IDs as strings and run a domain service on the process's event loop.

Every job is idempotent, so late acks and redelivery are safe: state-guarded updates, natural unique
keys with ON CONFLICT DO NOTHING, advisory locks around batches. A job that came from the outbox
counts its attempts and is parked, not looped, when it keeps failing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.config import get_settings
from youthlink.db.models import OutboxJob
from youthlink.db.models.enums import JobState
from youthlink.domain import delivery, hours, matching, notifications, reports, rollups
from youthlink.domain.matching import waitlist
from youthlink.workers import relay, runtime
from youthlink.workers.app import app

log = logging.getLogger(__name__)


async def _claim_attempt(outbox_id: int) -> bool:
    """Count this attempt; False when the job is already done, parked, or has failed too often."""
    db = runtime.database()
    async with db.unit_of_work() as session:
        attempts = await session.scalar(
            update(OutboxJob).where(OutboxJob.id == outbox_id, OutboxJob.state == JobState.PENDING)
            .values(attempts=OutboxJob.attempts + 1).returning(OutboxJob.attempts)
        )
        if attempts is None:
            log.info("job %s is already done or parked; nothing to do", outbox_id)
            return False
        if attempts > get_settings().outbox_max_attempts:
            await session.execute(
                update(OutboxJob).where(OutboxJob.id == outbox_id)
                .values(state=JobState.PARKED, last_error=f"parked after {attempts - 1} attempts")
            )
            log.error("job %s parked after %s attempts", outbox_id, attempts - 1)
            return False
    return True


async def _debug_pause(point: str) -> None:
    """Test-only fault injection (settings refuse it outside YOUTHLINK_ENV=test): hold the job here so a
    test can kill the worker child mid-job, or let the job outlive the broker's visibility timeout."""
    settings = get_settings()
    if settings.debug_job_pause_seconds and settings.debug_job_pause_at == point:
        log.warning("debug pause: %s s %s", settings.debug_job_pause_seconds, point)
        await asyncio.sleep(settings.debug_job_pause_seconds)


async def execute(work: Callable[[AsyncSession], Awaitable[Any]], outbox_id: int | None) -> Any:
    if outbox_id is not None and not await _claim_attempt(outbox_id):
        return None
    db = runtime.database()
    async with db.unit_of_work() as session:
        result = await work(session)
        if outbox_id is not None:
            # Done in the same transaction as the work: either both happen or neither.
            await session.execute(
                update(OutboxJob).where(OutboxJob.id == outbox_id)
                .values(state=JobState.DONE, done_at=datetime.now(UTC))
            )
        await _debug_pause("before_commit")
    await _debug_pause("after_commit")
    return result


@app.task(name="hours.credit")
def credit_hours(signup_id: str, outbox_id: int | None = None) -> str | None:
    async def work(session: AsyncSession) -> str | None:
        record = await hours.credit_from_checkin(session, uuid.UUID(signup_id))
        return str(record.id) if record else None

    return runtime.run(execute(work, outbox_id))


@app.task(name="hours.auto_approve")
def auto_approve_hours() -> int:
    """Approve the PENDING records of organizations that turned auto-approval on (state-guarded)."""
    return int(runtime.run(execute(hours.auto_approve, None)))


@app.task(name="hours.deadlines")
def hours_deadlines() -> dict[str, int]:
    """Mark records past their recording deadline late; remind organizations of those due soon (once a day)."""
    result: dict[str, int] = runtime.run(execute(hours.mark_late_and_remind, None))
    return result


@app.task(name="hours.reconcile")
def reconcile_hours() -> int:
    """Nightly: recompute every volunteer's total from the ledger; the drift reported must be zero."""
    return int(runtime.run(execute(hours.reconcile, None)))


@app.task(name="notifications.remind")
def send_due_reminders() -> dict[str, int]:
    """Reminders before confirmed tasks and under-filled warnings that are due (each keyed, so sent once)."""
    result: dict[str, int] = runtime.run(execute(notifications.send_due_reminders, None))
    return result


async def _job_done(session: AsyncSession, outbox_id: int | None) -> None:
    if outbox_id is not None:
        await session.execute(update(OutboxJob).where(OutboxJob.id == outbox_id, OutboxJob.state == JobState.PENDING)
                              .values(state=JobState.DONE, done_at=datetime.now(UTC)))


async def deliver(delivery_id: uuid.UUID, outbox_id: int | None) -> str:
    """Claim (committed), send outside any transaction, then mark SENT and the job done together. See
    youthlink/domain/delivery.py for why a killed or redelivered job sends a message once."""
    if outbox_id is not None and not await _claim_attempt(outbox_id):
        return "done"
    db = runtime.database()
    async with db.unit_of_work() as session:
        claimed = await delivery.claim(session, delivery_id)
        if isinstance(claimed, str) and claimed != "busy":
            await _job_done(session, outbox_id)  # sent, given up, gone, or quiet hours (the sweep sends it later)
    if isinstance(claimed, str):
        log.info("delivery %s: nothing to send now (%s)", delivery_id, claimed)
        return claimed
    async with db.read() as session:
        prepared = await delivery.prepare(session, delivery_id)
    await _debug_pause("before_commit")  # test hook: a child killed here leaves a claim that holds its lease
    error = None
    if prepared is None:
        error = "the recipient has no address for this channel"
    else:
        name, message = prepared
        try:
            await delivery.channels()[name].send(message)
        except Exception as exc:  # any failure of the channel: retried by the outbox, given up after max attempts
            error = f"{type(exc).__name__}: {exc}"
    async with db.unit_of_work() as session:
        await delivery.finish(session, claimed, error)
        if error is None:
            await _job_done(session, outbox_id)
    await _debug_pause("after_commit")
    if error is not None:
        log.warning("delivery %s failed (attempt %s): %s", delivery_id, claimed.attempts, error)
        return "failed"
    log.info("delivery %s sent", delivery_id)
    return "sent"


@app.task(name="notifications.deliver")
def deliver_notification(delivery_id: str, outbox_id: int | None = None) -> str:
    """Send one notification over one channel (email, webhook), once."""
    return runtime.run(deliver(uuid.UUID(delivery_id), outbox_id))


@app.task(name="notifications.matching_decided")
def matching_decided(run_id: str, task_ids: list[str], outbox_id: int | None = None) -> int:
    """Tell a matching run's applicants its decisions (recorded by the batch in its transaction)."""
    async def work(session: AsyncSession) -> int:
        return await notifications.matching_decided(session, run_id, task_ids)

    return int(runtime.run(execute(work, outbox_id)) or 0)


@app.task(name="notifications.sweep")
def sweep_deliveries() -> int:
    """Deliveries held by quiet hours that are now due, or claimed by a worker that died, are sent again."""
    return int(runtime.run(execute(delivery.due_again, None)))


@app.task(name="matching.run_batch", soft_time_limit=get_settings().matching_job_soft_time_limit,
          time_limit=get_settings().matching_job_time_limit)
def run_matching_batch(task_ids: list[str] | None = None, outbox_id: int | None = None) -> dict[str, Any]:
    """Decide every due MATCHED task's applications together (the beat runs it; requestMatching too)."""
    async def work(session: AsyncSession) -> dict[str, Any]:
        return await matching.run_batch(session, [uuid.UUID(t) for t in task_ids] if task_ids else None)

    return runtime.run(execute(work, outbox_id)) or {}


@app.task(name="matching.promote")
def promote_waitlisted(task_id: str, outbox_id: int | None = None) -> list[str]:
    """A slot of a MATCHED task was freed: confirm the best eligible waitlisted volunteer(s)."""
    async def work(session: AsyncSession) -> list[str]:
        return [str(s.id) for s in await waitlist.promote(session, uuid.UUID(task_id))]

    return runtime.run(execute(work, outbox_id)) or []


@app.task(name="stats.refresh")
def refresh_stats(buckets: list[list[str]], outbox_id: int | None = None) -> dict[str, int]:
    """Recompute the touched rollup buckets from the ledger and upsert them (idempotent)."""
    async def work(session: AsyncSession) -> dict[str, int]:
        return await rollups.refresh(session, rollups.parse_buckets(buckets))

    return runtime.run(execute(work, outbox_id)) or {}


@app.task(name="stats.monthly_report")
def announce_monthly_report() -> int:
    """Daily: on the 1st (or the first run after), tell the city admins last month's report is ready (once)."""
    return int(runtime.run(execute(reports.announce_last_month, None)))


@app.task(name="stats.rebuild")
def rebuild_stats() -> int:
    """Nightly: every rollup row recomputed from the ledger; the drift reported must be zero."""
    return int(runtime.run(execute(rollups.rebuild, None)))


@app.task(name="outbox.relay")
def relay_outbox() -> int:
    return runtime.run(relay.send(runtime.database(), None))
