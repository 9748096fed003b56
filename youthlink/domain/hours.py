"""The service-hours ledger: crediting, approval, corrections, totals and star levels.

Hours are credited once: a record's natural key is its sign-up (`INSERT ... ON CONFLICT DO NOTHING`).
An approved record never changes; a correction is an Adjustment with a reason. A volunteer's total is
recomputed from the ledger in the same transaction, never incremented blindly.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy import CompoundSelect, Select, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.config import get_settings
from youthlink.db.models import Adjustment, ServiceRecord, Signup, Task, Volunteer
from youthlink.db.models.enums import SLOT_HOLDING, RecordSource, RecordStatus, SignupStatus
from youthlink.domain import audit, organizations, policies
from youthlink.domain.actor import Actor
from youthlink.domain.inputs import AdjustServiceRecord, RecordServiceHours
from youthlink.errors import Conflict, Forbidden, Invalid, NotFound

log = logging.getLogger(__name__)

STAR_THRESHOLDS = (Decimal(100), Decimal(300), Decimal(600), Decimal(1000), Decimal(1500))
MAX_BULK = 500


def star_level(total_hours: Decimal) -> int:
    """1 star at 100 h, 2 at 300, 3 at 600, 4 at 1,000, 5 at 1,500 (中国注册志愿者管理办法)."""
    return sum(1 for threshold in STAR_THRESHOLDS if total_hours >= threshold)


def served_hours(presence: tuple[datetime, datetime], window: tuple[datetime, datetime]) -> Decimal:
    """Hours of presence inside the task's window, rounded down to the configured step."""
    start, end = max(presence[0], window[0]), min(presence[1], window[1])
    seconds = max((end - start).total_seconds(), 0.0)
    step = get_settings().hours_step
    exact = Decimal(seconds) / Decimal(3600)
    return (exact / step).to_integral_value(rounding=ROUND_FLOOR) * step


async def credit_from_checkin(session: AsyncSession, signup_id: uuid.UUID) -> ServiceRecord | None:
    """Create the PENDING record for a checked-out sign-up. Idempotent: a second run finds it and stops."""
    signup = await session.get(Signup, signup_id)
    if signup is None or signup.status is not SignupStatus.COMPLETED:
        log.info("hours.credit: sign-up %s is not completed; nothing to credit", signup_id)
        return None
    if signup.checked_in_at is None or signup.checked_out_at is None:
        return None
    task = await session.get(Task, signup.task_id)
    assert task is not None
    hours = served_hours((signup.checked_in_at, signup.checked_out_at), (task.starts_at, task.ends_at))
    if hours <= 0:
        log.info("hours.credit: sign-up %s served no time inside the task window", signup_id)
        return None
    started = max(signup.checked_in_at, task.starts_at)
    ended = min(signup.checked_out_at, task.ends_at)
    record_id = await session.scalar(
        insert(ServiceRecord)
        .values(
            id=uuid.uuid4(), volunteer_id=signup.volunteer_id, task_id=task.id, signup_id=signup.id,
            started_at=started, ended_at=ended, hours=hours, status=RecordStatus.PENDING,
            source=RecordSource.CHECK_IN, note="",
        )
        .on_conflict_do_nothing(index_elements=[ServiceRecord.signup_id])
        .returning(ServiceRecord.id)
    )
    if record_id is None:
        log.info("hours.credit: sign-up %s already credited", signup_id)
        return None
    audit.record(session, None, "hours.credit", "service_record", record_id, hours=str(hours))
    return await session.get(ServiceRecord, record_id)


async def _require_manages(session: AsyncSession, actor: Actor, tasks: Iterable[Task], field: str) -> None:
    tasks = list(tasks)
    lineage_by_org = await organizations.lineages(session, list({t.organization_id for t in tasks}))
    for task in tasks:
        if not policies.manages_task(actor, lineage_by_org.get(task.organization_id, []), task.team_id):
            policies.require_login(actor)
            raise Forbidden("FORBIDDEN", "无权管理该任务的服务时长", field)


async def record_paper_hours(session: AsyncSession, actor: Actor, command: RecordServiceHours) -> ServiceRecord:
    """Attendance taken on paper: the organization records hours for a sign-up; they wait for approval."""
    policies.require_login(actor)
    signup = await session.scalar(select(Signup).where(Signup.id == command.signup_id).with_for_update())
    if signup is None:
        raise NotFound("SIGNUP_NOT_FOUND", "报名记录不存在", "signupId")
    task = await session.get(Task, signup.task_id)
    assert task is not None
    await _require_manages(session, actor, [task], "signupId")
    if signup.status not in SLOT_HOLDING:
        raise Conflict("SIGNUP_NOT_CONFIRMED", "该报名未确认，不能记录时长", "signupId")
    if command.ended_at > datetime.now(UTC) + timedelta(minutes=5):
        raise Invalid("FUTURE_TIME", "不能记录未来的服务时间", "endedAt")
    hours = served_hours((command.started_at, command.ended_at), (task.starts_at, task.ends_at))
    if hours <= 0:
        raise Invalid("OUTSIDE_TASK_WINDOW", "服务时间不在任务时间范围内", "startedAt")
    existing = await session.scalar(select(ServiceRecord.id).where(ServiceRecord.signup_id == signup.id))
    if existing is not None:
        raise Conflict("ALREADY_RECORDED", "该报名已有服务记录", "signupId")
    record = ServiceRecord(
        volunteer_id=signup.volunteer_id, task_id=task.id, signup_id=signup.id,
        started_at=max(command.started_at, task.starts_at), ended_at=min(command.ended_at, task.ends_at),
        hours=hours, status=RecordStatus.PENDING, source=RecordSource.PAPER, note=command.note,
        recorded_by=actor.account_id,
    )
    session.add(record)
    signup.status = SignupStatus.COMPLETED
    await session.flush()
    audit.record(session, actor.account_id, "hours.record", "service_record", record.id, hours=str(hours))
    return record


async def approve_records(session: AsyncSession, actor: Actor, record_ids: list[uuid.UUID]) -> list[ServiceRecord]:
    """Approve PENDING records in bulk; approving an already approved record changes nothing."""
    policies.require_login(actor)
    if not record_ids:
        raise Invalid("NO_RECORDS", "请选择要审核的记录", "ids")
    if len(record_ids) > MAX_BULK:
        raise Invalid("TOO_MANY_RECORDS", f"一次最多审核 {MAX_BULK} 条", "ids")
    unique_ids = list(dict.fromkeys(record_ids))
    records = (
        await session.scalars(
            select(ServiceRecord).where(ServiceRecord.id.in_(unique_ids)).order_by(ServiceRecord.id).with_for_update()
        )
    ).all()
    if len(records) != len(unique_ids):
        raise NotFound("RECORD_NOT_FOUND", "部分服务记录不存在", "ids")
    tasks = (await session.scalars(select(Task).where(Task.id.in_({r.task_id for r in records})))).all()
    await _require_manages(session, actor, tasks, "ids")
    rejected = [r for r in records if r.status is RecordStatus.REJECTED]
    if rejected:
        raise Conflict("RECORD_REJECTED", "已驳回的记录不能审核通过", "ids")
    now = datetime.now(UTC)
    for record in records:
        if record.status is RecordStatus.PENDING:
            record.status = RecordStatus.APPROVED
            record.approved_by = actor.account_id
            record.approved_at = now
            audit.record(session, actor.account_id, "hours.approve", "service_record", record.id,
                         hours=str(record.hours))
    await session.flush()
    await recompute_totals(session, {r.volunteer_id for r in records})
    by_id = {r.id: r for r in records}
    return [by_id[i] for i in unique_ids]


async def adjust_record(session: AsyncSession, actor: Actor, command: AdjustServiceRecord) -> Adjustment:
    """A correction of an approved record: a new, reasoned entry; the record itself stays as it was."""
    policies.require_login(actor)
    record = await session.scalar(
        select(ServiceRecord).where(ServiceRecord.id == command.record_id).with_for_update()
    )
    if record is None:
        raise NotFound("RECORD_NOT_FOUND", "服务记录不存在", "recordId")
    task = await session.get(Task, record.task_id)
    assert task is not None
    await _require_manages(session, actor, [task], "recordId")
    if record.status is not RecordStatus.APPROVED:
        raise Conflict("RECORD_NOT_APPROVED", "只能更正已审核通过的记录", "recordId")
    already = await session.scalar(
        select(func.coalesce(func.sum(Adjustment.hours), 0)).where(Adjustment.record_id == record.id)
    )
    corrected = record.hours + Decimal(already or 0) + command.hours
    if corrected < 0 or corrected > 24:
        raise Invalid("ADJUSTMENT_OUT_OF_RANGE", f"更正后时长须在 0 到 24 小时之间（当前 {corrected}）", "hours")
    adjustment = Adjustment(record_id=record.id, volunteer_id=record.volunteer_id, hours=command.hours,
                            reason=command.reason, created_by=actor.account_id)
    session.add(adjustment)
    await session.flush()
    audit.record(session, actor.account_id, "hours.adjust", "service_record", record.id,
                 adjustment_id=adjustment.id, hours=str(command.hours), reason=command.reason)
    await recompute_totals(session, {record.volunteer_id})
    return adjustment


def ledger_entries() -> CompoundSelect[uuid.UUID, uuid.UUID, datetime, Decimal]:
    """The ledger: approved records plus every adjustment (dated by its record). The one source of hours."""
    records = select(
        ServiceRecord.volunteer_id, ServiceRecord.task_id, ServiceRecord.started_at, ServiceRecord.hours
    ).where(ServiceRecord.status == RecordStatus.APPROVED)
    adjustments = select(
        ServiceRecord.volunteer_id, ServiceRecord.task_id, ServiceRecord.started_at, Adjustment.hours
    ).join(ServiceRecord, ServiceRecord.id == Adjustment.record_id)
    return records.union_all(adjustments)


def ledger_totals(volunteer_ids: Iterable[uuid.UUID] | None = None) -> Select[Any]:
    """Per volunteer: total hours from the ledger."""
    entries = ledger_entries().subquery("entries")
    query = select(entries.c.volunteer_id, func.sum(entries.c.hours).label("total")).group_by(entries.c.volunteer_id)
    if volunteer_ids is not None:
        query = query.where(entries.c.volunteer_id.in_(list(volunteer_ids)))
    return query


async def recompute_totals(session: AsyncSession, volunteer_ids: set[uuid.UUID]) -> None:
    if not volunteer_ids:
        return
    totals = {row.volunteer_id: row.total for row in await session.execute(ledger_totals(volunteer_ids))}
    for volunteer_id in sorted(volunteer_ids):
        await session.execute(
            update(Volunteer).where(Volunteer.id == volunteer_id).values(
                total_hours=totals.get(volunteer_id, Decimal(0))
            )
        )


async def rebuild_totals(session: AsyncSession) -> int:
    """Recompute every volunteer's total from the ledger; returns how many totals had drifted."""
    totals = ledger_totals().subquery("totals")
    derived = func.coalesce(totals.c.total, 0)
    drift = (
        select(Volunteer.id, derived.label("total"))
        .outerjoin(totals, totals.c.volunteer_id == Volunteer.id)
        .where(Volunteer.total_hours != derived)
        .subquery("drift")
    )
    result = await session.execute(
        update(Volunteer).where(Volunteer.id == drift.c.id).values(total_hours=drift.c.total)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
