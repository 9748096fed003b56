"""Sign-ups: the state machine from application to completed service, and the slot rule.

A task never holds more slot-holding sign-ups than it has slots, whatever the concurrency: every change
to `tasks.filled_slots` is one conditional UPDATE (`... WHERE filled_slots < slots`), the database's
CHECK backs it, and a volunteer's own sign-ups are serialized by a row lock on the volunteer.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.config import get_settings
from youthlink.db.models import Signup, Task, Volunteer
from youthlink.db.models.enums import ACTIVE, SLOT_HOLDING, AssignmentMode, SignupStatus, TaskStatus
from youthlink.domain import audit, notifications, organizations, outbox, policies, tasks
from youthlink.domain.accounts import ADULT_AGE, age_on
from youthlink.domain.actor import Actor
from youthlink.domain.geo import haversine_km
from youthlink.domain.inputs import CheckIn, CheckOut
from youthlink.domain.matching import waitlist
from youthlink.errors import Conflict, Forbidden, Invalid, NotFound


async def _task_for_update(session: AsyncSession, task_id: uuid.UUID, field: str = "taskId", lock: bool = False
                           ) -> Task:
    """The task; with `lock`, its row locked as a slot count's UPDATE locks it (FOR NO KEY UPDATE), so a sign-up
    decided on this task's state cannot interleave with a change or cancellation of the task."""
    if lock:
        task = await session.scalar(select(Task).where(Task.id == task_id).with_for_update(key_share=True)
                                    .execution_options(populate_existing=True))
    else:
        task = await session.get(Task, task_id)
    if task is None:
        raise NotFound("TASK_NOT_FOUND", "任务不存在", field)
    return task


async def take_slot(session: AsyncSession, task_id: uuid.UUID) -> bool:
    """Atomically take one slot; False when the task is full."""
    taken = await session.scalar(
        update(Task)
        .where(Task.id == task_id, Task.filled_slots < Task.slots)
        .values(filled_slots=Task.filled_slots + 1)
        .returning(Task.filled_slots)
    )
    return taken is not None


async def release_slot(session: AsyncSession, task_id: uuid.UUID) -> None:
    await session.execute(
        update(Task).where(Task.id == task_id, Task.filled_slots > 0).values(filled_slots=Task.filled_slots - 1)
    )


async def check_no_overlap(session: AsyncSession, volunteer_id: uuid.UUID, task: Task) -> None:
    clash = await session.scalar(
        select(Task.title)
        .join(Signup, Signup.task_id == Task.id)
        .where(
            Signup.volunteer_id == volunteer_id,
            Signup.recorded_status.in_(SLOT_HOLDING),
            Task.id != task.id,
            Task.starts_at < task.ends_at,
            Task.ends_at > task.starts_at,
        )
        .limit(1)
    )
    if clash is not None:
        raise Conflict("TIME_CONFLICT", f"与已确认的任务时间冲突：{clash}", "taskId")


def _check_eligible(volunteer: Volunteer, task: Task, now: datetime) -> None:
    age = age_on(volunteer.birth_date, task.starts_at.date())
    if task.min_age is not None and age < task.min_age:
        raise Forbidden("TOO_YOUNG", f"该任务要求年满 {task.min_age} 周岁", "taskId")
    if age < ADULT_AGE and volunteer.guardian_consent_at is None:
        raise Forbidden("GUARDIAN_CONSENT_REQUIRED", "未成年志愿者需先登记监护人同意", "taskId")
    missing = set(task.required_skills) - set(volunteer.skills)
    if missing:
        raise Forbidden("MISSING_SKILLS", f"缺少所需技能：{', '.join(sorted(missing))}", "taskId")


async def _lock_volunteer(session: AsyncSession, volunteer_id: uuid.UUID) -> Volunteer:
    # Serializes one volunteer's sign-ups, so two concurrent ones cannot both pass the overlap check.
    volunteer = await session.scalar(select(Volunteer).where(Volunteer.id == volunteer_id).with_for_update())
    if volunteer is None:
        raise NotFound("VOLUNTEER_NOT_FOUND", "志愿者不存在", "volunteerId")
    return volunteer


async def _active_signup_exists(session: AsyncSession, task_id: uuid.UUID, volunteer_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(Signup.id).where(
            Signup.task_id == task_id, Signup.volunteer_id == volunteer_id, Signup.status.in_(ACTIVE)
        )
    )
    return found is not None


async def _settle_rejected(session: AsyncSession, task_id: uuid.UUID, volunteer_id: uuid.UUID) -> None:
    """An application a matching batch rejected still reads APPLIED in its row (its round's MatchingDecision
    says REJECTED). Write that into the row before a new sign-up of the same volunteer takes its place among
    the task's active sign-ups (one per volunteer: a unique index on the rows)."""
    await session.execute(
        update(Signup)
        .where(Signup.task_id == task_id, Signup.volunteer_id == volunteer_id,
               Signup.recorded_status == SignupStatus.APPLIED, Signup.status == SignupStatus.REJECTED)
        .values(recorded_status=SignupStatus.REJECTED)
        .execution_options(synchronize_session=False)
    )


async def sign_up(session: AsyncSession, actor: Actor, task_id: uuid.UUID) -> Signup:
    volunteer_id = policies.require_volunteer(actor)
    volunteer = await _lock_volunteer(session, volunteer_id)
    # Locked after the volunteer (the matcher's order too): a cancellation committed meanwhile is seen here.
    task = await _task_for_update(session, task_id, lock=True)
    now = datetime.now(UTC)
    if task.status is not TaskStatus.OPEN:
        raise Conflict("TASK_NOT_OPEN", "该任务当前不接受报名", "taskId")
    if (task.signup_deadline is not None and now > task.signup_deadline) or now >= task.ends_at:
        raise Conflict("SIGNUP_CLOSED", "报名已截止", "taskId")
    if await _active_signup_exists(session, task.id, volunteer.id):
        raise Conflict("ALREADY_SIGNED_UP", "已报名该任务", "taskId")
    _check_eligible(volunteer, task, now)
    await check_no_overlap(session, volunteer.id, task)

    if task.assignment_mode is AssignmentMode.FIRST_COME:
        status = SignupStatus.CONFIRMED if await take_slot(session, task.id) else SignupStatus.WAITLISTED
    else:
        status = SignupStatus.APPLIED
        await _settle_rejected(session, task.id, volunteer.id)
    # The round is read under the task's row lock: a batch closing it waits for this sign-up to commit.
    signup = Signup(task_id=task.id, volunteer_id=volunteer.id, status=status, matching_round=task.matching_round,
                    decided_at=now if status is not SignupStatus.APPLIED else None)
    session.add(signup)
    await session.flush()
    audit.record(session, actor.account_id, "signup.create", "signup", signup.id, status=status.value)
    if status is not SignupStatus.APPLIED:  # an application waits for the matcher's decision
        await notifications.notify_signup(session, signup, f"signup.{status.value.lower()}")
    await session.refresh(task, ["filled_slots"])
    return signup


async def _signup(session: AsyncSession, signup_id: uuid.UUID) -> tuple[Signup, Task]:
    signup = await session.scalar(select(Signup).where(Signup.id == signup_id).with_for_update())
    if signup is None:
        raise NotFound("SIGNUP_NOT_FOUND", "报名记录不存在", "signupId")
    task = await session.get(Task, signup.task_id)
    assert task is not None
    return signup, task


async def _manages(session: AsyncSession, actor: Actor, task: Task) -> bool:
    lineage = await organizations.lineage(session, task.organization_id)
    return policies.manages_task(actor, lineage, task.team_id)


async def promote_waitlisted(session: AsyncSession, task_id: uuid.UUID) -> Signup | None:
    """Give a freed slot to the longest-waiting waitlisted volunteer who has no clashing task."""
    waiting = (
        await session.scalars(
            select(Signup)
            .where(Signup.task_id == task_id, Signup.status == SignupStatus.WAITLISTED)
            .order_by(Signup.applied_at, Signup.id)
            .with_for_update(skip_locked=True)
        )
    ).all()
    task = await session.get(Task, task_id)
    assert task is not None
    for candidate in waiting:
        # The candidate's own sign-ups (and the matcher) lock the volunteer before checking clashes; skip one
        # that is busy rather than wait, so a clash cannot slip in between the check and the commit.
        if await session.scalar(select(Volunteer.id).where(Volunteer.id == candidate.volunteer_id)
                                .with_for_update(skip_locked=True)) is None:
            continue
        try:
            await check_no_overlap(session, candidate.volunteer_id, task)
        except Conflict:
            continue
        if not await take_slot(session, task_id):
            return None
        candidate.status = SignupStatus.CONFIRMED
        candidate.decided_at = datetime.now(UTC)
        audit.record(session, None, "signup.promote", "signup", candidate.id)
        await notifications.notify_signup(session, candidate, "signup.promoted")
        return candidate
    return None


async def cancel_signup(session: AsyncSession, actor: Actor, signup_id: uuid.UUID, reason: str | None) -> Signup:
    policies.require_login(actor)
    signup, task = await _signup(session, signup_id)
    own = actor.volunteer_id == signup.volunteer_id
    if not own and not await _manages(session, actor, task):
        raise Forbidden("FORBIDDEN", "无权取消该报名", "signupId")
    if signup.status in (SignupStatus.CANCELLED, SignupStatus.REJECTED):
        raise Conflict("ALREADY_CANCELLED", "该报名已取消", "signupId")
    if signup.status in (SignupStatus.CHECKED_IN, SignupStatus.COMPLETED, SignupStatus.NO_SHOW):
        raise Conflict("CANNOT_CANCEL", "已签到或已结束的报名不能取消", "signupId")
    if reason is not None and len(reason) > 256:
        raise Invalid("REASON_TOO_LONG", "原因最多 256 字", "reason")
    held_slot = signup.status in SLOT_HOLDING
    signup.status = SignupStatus.CANCELLED
    signup.cancelled_at = datetime.now(UTC)
    signup.cancel_reason = reason
    await session.flush()
    audit.record(session, actor.account_id, "signup.cancel", "signup", signup.id, reason=reason)
    if held_slot:
        await release_slot(session, task.id)
        if task.assignment_mode is AssignmentMode.MATCHED:
            # The matcher's waitlist is ranked by score: a worker promotes the best eligible volunteer at once.
            await waitlist.slot_freed(session, task)
        elif task.status is TaskStatus.OPEN and datetime.now(UTC) < task.starts_at:
            await promote_waitlisted(session, task.id)
    return signup


async def add_participant(session: AsyncSession, actor: Actor, task_id: uuid.UUID, volunteer_id: uuid.UUID
                          ) -> Signup:
    """The organization adds a volunteer (a task recorded after the fact, or a call-up)."""
    task = await _task_for_update(session, task_id)
    lineage = await organizations.lineage(session, task.organization_id)
    policies.require_manages_task(actor, lineage, task.team_id)
    volunteer = await _lock_volunteer(session, volunteer_id)
    if task.status in (TaskStatus.CANCELLED, TaskStatus.DRAFT):
        raise Conflict("TASK_NOT_OPEN", "该任务未发布或已取消", "taskId")
    existing = await session.scalar(
        select(Signup).where(Signup.task_id == task.id, Signup.volunteer_id == volunteer.id,
                             Signup.status.in_((SignupStatus.APPLIED, SignupStatus.WAITLISTED, *SLOT_HOLDING)))
    )
    if existing is not None and existing.status in SLOT_HOLDING:
        raise Conflict("ALREADY_SIGNED_UP", "该志愿者已在任务中", "volunteerId")
    if existing is None:
        await _settle_rejected(session, task.id, volunteer.id)
    await check_no_overlap(session, volunteer.id, task)
    if not await take_slot(session, task.id):
        raise Conflict("TASK_FULL", "任务名额已满", "taskId")
    now = datetime.now(UTC)
    if existing is not None:
        existing.status, existing.decided_at, existing.added_by = SignupStatus.CONFIRMED, now, actor.account_id
        signup = existing
    else:
        signup = Signup(task_id=task.id, volunteer_id=volunteer.id, status=SignupStatus.CONFIRMED,
                        decided_at=now, added_by=actor.account_id)
        session.add(signup)
    await session.flush()
    audit.record(session, actor.account_id, "signup.add_participant", "signup", signup.id,
                 volunteer_id=volunteer.id)
    await notifications.notify_signup(session, signup, "signup.confirmed")
    return signup


async def check_in(session: AsyncSession, actor: Actor, command: CheckIn) -> Signup:
    volunteer_id = policies.require_volunteer(actor)
    signup, task = await _signup(session, command.signup_id)
    if signup.volunteer_id != volunteer_id:
        raise Forbidden("FORBIDDEN", "只能为自己签到", "signupId")
    if signup.status is SignupStatus.CHECKED_IN:
        raise Conflict("ALREADY_CHECKED_IN", "已签到", "signupId")
    if signup.status is not SignupStatus.CONFIRMED:
        raise Conflict("NOT_CONFIRMED", "报名尚未确认，不能签到", "signupId")
    now = datetime.now(UTC)
    settings = get_settings()
    if now < task.starts_at - timedelta(minutes=settings.checkin_early_minutes):
        raise Conflict("CHECKIN_TOO_EARLY", f"任务开始前 {settings.checkin_early_minutes} 分钟内才能签到", "signupId")
    if now >= task.ends_at:
        raise Conflict("CHECKIN_TOO_LATE", "任务已结束，不能签到", "signupId")
    if not tasks.checkin_code_matches(task, command.code, now):
        raise Invalid("CHECKIN_CODE_INVALID", "签到码不正确或已过期", "code")
    if command.location is None:
        raise Invalid("LOCATION_REQUIRED", "签到需要定位", "location")
    distance_m = haversine_km(command.location.lat, command.location.lng, task.lat, task.lng) * 1000
    if distance_m > task.checkin_radius_m:
        raise Invalid("CHECKIN_TOO_FAR", f"距离任务地点 {distance_m:.0f} 米，超出 {task.checkin_radius_m} 米范围",
                      "location")
    signup.status = SignupStatus.CHECKED_IN
    signup.checked_in_at = now
    audit.record(session, actor.account_id, "signup.check_in", "signup", signup.id)
    return signup


async def check_out(session: AsyncSession, actor: Actor, command: CheckOut) -> Signup:
    volunteer_id = policies.require_volunteer(actor)
    signup, _ = await _signup(session, command.signup_id)
    if signup.volunteer_id != volunteer_id:
        raise Forbidden("FORBIDDEN", "只能为自己签退", "signupId")
    if signup.status is not SignupStatus.CHECKED_IN:
        raise Conflict("NOT_CHECKED_IN", "尚未签到，不能签退", "signupId")
    signup.status = SignupStatus.COMPLETED
    signup.checked_out_at = datetime.now(UTC)
    await session.flush()
    audit.record(session, actor.account_id, "signup.check_out", "signup", signup.id)
    # Crediting is a worker's job, recorded here so it cannot be lost if the broker is down.
    await outbox.record_job(session, "hours.credit", signup_id=str(signup.id))
    return signup


async def request_matching(session: AsyncSession, actor: Actor, task_id: uuid.UUID) -> Task:
    task = await _task_for_update(session, task_id)
    lineage = await organizations.lineage(session, task.organization_id)
    policies.require_manages_task(actor, lineage, task.team_id)
    if task.assignment_mode is not AssignmentMode.MATCHED:
        raise Invalid("NOT_MATCHED_TASK", "仅“匹配”模式的任务需要发起匹配", "taskId")
    if task.status is not TaskStatus.OPEN:
        raise Conflict("TASK_NOT_OPEN", "该任务当前不接受匹配", "taskId")
    task.matching_requested_at = datetime.now(UTC)
    await outbox.record_job(session, "matching.run_batch", task_ids=[str(task.id)])
    audit.record(session, actor.account_id, "task.request_matching", "task", task.id)
    return task
