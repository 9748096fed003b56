"""The waitlist of MATCHED tasks: a freed slot goes to the best waitlisted volunteer, by a worker, at once.

A slot frees up when a confirmed volunteer cancels or is marked a no-show; the transaction that frees it
records a `matching.promote` job (outbox). The job re-scores the task's waitlist with the batch's own rules and
factors (facts may have changed since the batch), and confirms the best eligible volunteers, one per free slot.
It holds the batch's advisory lock, so it never runs beside a batch, and it is idempotent: a second run finds
the task full (or nobody eligible) and changes nothing.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.config import get_settings
from youthlink.db.models import Signup, Task, Volunteer
from youthlink.db.models.enums import AssignmentMode, SignupStatus, TaskStatus
from youthlink.domain import audit, notifications, organizations, outbox, policies, rollups, signups
from youthlink.domain.actor import Actor
from youthlink.domain.matching import candidates, scores
from youthlink.domain.matching.batch import MATCHING_LOCK_KEY
from youthlink.errors import Conflict, Forbidden, NotFound

log = logging.getLogger(__name__)


def promotion_due(task: Task, now: datetime) -> bool:
    """A MATCHED task's freed slot is offered to its waitlist while the task is open and not over."""
    return task.assignment_mode is AssignmentMode.MATCHED and task.status is TaskStatus.OPEN and now < task.ends_at


async def slot_freed(session: AsyncSession, task: Task) -> None:
    """Called in the transaction that freed a slot of `task`: the promotion runs on a worker after commit."""
    if promotion_due(task, datetime.now(UTC)):
        await outbox.record_job(session, "matching.promote", task_id=str(task.id))


async def promote(session: AsyncSession, task_id: uuid.UUID) -> list[Signup]:
    """Fill the task's free slots from its waitlist, best score first. Returns the promoted sign-ups."""
    await session.execute(select(func.pg_advisory_xact_lock(MATCHING_LOCK_KEY)))
    task = await session.scalar(select(Task).where(Task.id == task_id).with_for_update())
    now = datetime.now(UTC)
    if task is None or not promotion_due(task, now) or task.filled_slots >= task.slots:
        log.info("matching.promote: task %s has no free slot to offer", task_id)
        return []
    settings = get_settings()
    weights = scores.Weights.from_settings(settings)
    vocab = candidates.vocabulary([task])
    tasks = candidates.task_table([task], vocab, now)
    apps = await candidates.load_applications(session, [task], candidates.WAITLISTED)
    if apps.size == 0:
        return []
    volunteers = await candidates.load_volunteers(session, candidates.Roster.of(apps.volunteer_ids), vocab, now,
                                                 settings)
    memberships = await candidates.load_memberships(session, tasks, volunteers)
    held = await candidates.load_held(session, volunteers, task.starts_at, task.ends_at)
    evaluation = candidates.evaluate(candidates.Pairs(apps.task, apps.volunteer, apps.applied), tasks, volunteers,
                                     memberships, held, weights, settings)
    eligible = np.flatnonzero(evaluation.candidate)
    ranked = apps.best_first(evaluation.units, eligible)
    promoted: list[Signup] = []
    passed_over_busy = False
    for i in ranked.tolist():
        if task.filled_slots >= task.slots:
            break
        volunteer_id = volunteers.ids[int(apps.volunteer[i])]
        # Skip a volunteer someone else is signing up right now rather than wait (and risk a deadlock): their
        # row is locked FOR UPDATE. FOR NO KEY UPDATE is enough to exclude that, and unlike FOR UPDATE it does
        # not collide with the key-share locks of rows being written that refer to the volunteer (the batch's
        # notifications, say), which would make a promotion pass over everyone and leave the slot empty.
        locked = await session.scalar(
            select(Volunteer.id).where(Volunteer.id == volunteer_id).with_for_update(key_share=True, skip_locked=True)
        )
        if locked is None:
            passed_over_busy = True
            continue
        try:
            await signups.check_no_overlap(session, volunteer_id, task)
        except Conflict:
            continue
        signup_id = uuid.UUID(bytes=bytes(apps.signup_id[i]))
        explanation = candidates.explain(evaluation, volunteers, int(apps.volunteer[i]), i, weights, "CONFIRMED",
                                         "PROMOTED")
        signup = await session.scalar(
            update(Signup).where(Signup.id == signup_id, Signup.status == SignupStatus.WAITLISTED)
            .values(recorded_status=SignupStatus.CONFIRMED, decided_at=now,
                    match_score=scores.points(evaluation.units[i]), match_explanation=explanation)
            .returning(Signup)
        )
        if signup is None:
            continue
        if not await signups.take_slot(session, task.id):
            raise Conflict("TASK_FULL", "任务名额已满", "taskId")  # cannot happen: the task row is locked
        await session.refresh(task, ["filled_slots"])
        audit.record(session, None, "signup.promote", "signup", signup.id, score=str(signup.match_score))
        await notifications.notify_signup(session, signup, "signup.promoted")
        promoted.append(signup)
    if passed_over_busy and task.filled_slots < task.slots:
        # A slot is still free and someone passed over may be free in a moment: try again a little later.
        await outbox.record_job(session, "matching.promote", later=True, task_id=str(task.id))
    log.info("matching.promote: task %s, %d promoted", task_id, len(promoted))
    return promoted


async def mark_no_show(session: AsyncSession, actor: Actor, signup_id: uuid.UUID) -> Signup:
    """The organization records that a confirmed volunteer did not come: the slot is freed (and offered to the
    waitlist of a MATCHED task that is still under way), and the no-show lowers the volunteer's reliability."""
    signup = await session.scalar(select(Signup).where(Signup.id == signup_id).with_for_update())
    if signup is None:
        raise NotFound("SIGNUP_NOT_FOUND", "报名记录不存在", "signupId")
    task = await session.get(Task, signup.task_id)
    assert task is not None
    lineage = await organizations.lineage(session, task.organization_id)
    policies.require_login(actor)
    if not policies.manages_task(actor, lineage, task.team_id):
        raise Forbidden("FORBIDDEN", "无权管理该任务", "signupId")
    if signup.status is SignupStatus.NO_SHOW:
        return signup
    if signup.status is not SignupStatus.CONFIRMED:
        raise Conflict("NOT_CONFIRMED", "只有已确认且未签到的报名可以记为爽约", "signupId")
    if datetime.now(UTC) < task.starts_at:
        raise Conflict("TASK_NOT_STARTED", "任务开始后才能记为爽约", "signupId")
    signup.status = SignupStatus.NO_SHOW
    await session.flush()
    await signups.release_slot(session, task.id)
    await session.refresh(task, ["filled_slots"])
    audit.record(session, actor.account_id, "signup.no_show", "signup", signup.id)
    await rollups.touch(session, [(task.starts_at, task.organization_id, task.id)])
    await slot_freed(session, task)
    return signup
