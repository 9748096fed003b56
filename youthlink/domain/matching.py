"""Deciding MATCHED tasks' applications in batches.

This is the simple rule of the foundation (first applied, first confirmed, clashes skipped); the optimal
matcher replaces `decide` without changing how batches are found, locked and written.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.db.models import Signup, Task
from youthlink.db.models.enums import AssignmentMode, SignupStatus, TaskStatus
from youthlink.domain import audit, signups
from youthlink.errors import Conflict

log = logging.getLogger(__name__)
# pg_advisory_xact_lock key: two batches never overlap, whichever workers run them.
MATCHING_LOCK_KEY = 0x59_4C_4D_41  # "YLMA"


async def due_tasks(session: AsyncSession, task_ids: list[uuid.UUID] | None, now: datetime) -> list[Task]:
    query = select(Task).where(Task.assignment_mode == AssignmentMode.MATCHED, Task.status == TaskStatus.OPEN)
    if task_ids:
        query = query.where(Task.id.in_(task_ids))
    else:
        query = query.where(
            or_(Task.matching_requested_at.is_not(None), Task.signup_deadline <= now, Task.starts_at <= now)
        )
    has_applications = select(Signup.id).where(Signup.task_id == Task.id, Signup.status == SignupStatus.APPLIED)
    query = query.where(has_applications.exists()).order_by(Task.starts_at, Task.id)
    return list((await session.scalars(query)).all())


async def run_batch(session: AsyncSession, task_ids: list[uuid.UUID] | None = None) -> dict[str, int]:
    """Decide every APPLIED sign-up of the due MATCHED tasks. Running it twice changes nothing more."""
    await session.execute(select(func.pg_advisory_xact_lock(MATCHING_LOCK_KEY)))
    now = datetime.now(UTC)
    counts = {"tasks": 0, "confirmed": 0, "waitlisted": 0}
    for task in await due_tasks(session, task_ids, now):
        counts["tasks"] += 1
        applications = (
            await session.scalars(
                select(Signup)
                .where(Signup.task_id == task.id, Signup.status == SignupStatus.APPLIED)
                .order_by(Signup.applied_at, Signup.id)
                .with_for_update()
            )
        ).all()
        for application in applications:
            confirmed = False
            try:
                await signups.check_no_overlap(session, application.volunteer_id, task)
                confirmed = await signups.take_slot(session, task.id)
            except Conflict:
                confirmed = False
            application.status = SignupStatus.CONFIRMED if confirmed else SignupStatus.WAITLISTED
            application.decided_at = now
            counts["confirmed" if confirmed else "waitlisted"] += 1
            audit.record(session, None, "signup.match", "signup", application.id,
                         status=application.status.value)
        task.matched_at = now
        task.matching_requested_at = None
        await session.flush()
    log.info("matching batch: %s", counts)
    return counts
