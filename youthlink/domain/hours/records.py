"""Service records: credit from check-in, paper records, review (approve / reject / auto-approve),
the recording deadline, overlaps, and each record's history.

Hours are credited once: a record's natural key is its sign-up (`INSERT ... ON CONFLICT DO NOTHING`), or
its import key for offline records. One volunteer's records are serialized by a row lock on the
volunteer, so the overlap rule holds under concurrency: no two records of one person that both count
(pending or approved) cover the same time, across organizations too. A decided record never changes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.db.models import (
    Account,
    AuditEntry,
    Organization,
    OrganizationHoursSettings,
    ServiceRecord,
    Signup,
    Task,
    Volunteer,
)
from youthlink.db.models.enums import SLOT_HOLDING, RecordSource, RecordStatus, SignupStatus
from youthlink.domain import audit, notifications, organizations, policies, rollups
from youthlink.domain.actor import Actor
from youthlink.domain.hours import deadlines
from youthlink.domain.hours.commands import MAX_BULK, RejectServiceRecords, SetAutoApproval
from youthlink.domain.hours.ledger import recompute_totals, served_hours
from youthlink.domain.inputs import RecordServiceHours
from youthlink.domain.pagination import Page, decode_cursor, encode_cursor, keyset_after, page_size
from youthlink.errors import Conflict, Forbidden, Invalid, NotFound

log = logging.getLogger(__name__)
COUNTING = (RecordStatus.PENDING, RecordStatus.APPROVED)  # records that hold their time
DAY_HOURS = Decimal(24)


# Overlap: the same person credited twice for one time

@dataclass(frozen=True)
class Clash:
    record_id: uuid.UUID
    organization: str


async def lock_volunteers(session: AsyncSession, volunteer_ids: Iterable[uuid.UUID]) -> None:
    """Serialize every change to these volunteers' records (always in id order: no deadlocks)."""
    ids = sorted(set(volunteer_ids))
    if ids:
        await session.execute(
            select(Volunteer.id).where(Volunteer.id.in_(ids)).order_by(Volunteer.id).with_for_update()
        )


async def find_clash(session: AsyncSession, volunteer_id: uuid.UUID, service_date: date, hours: Decimal,
                     window: tuple[datetime, datetime] | None, *, exclude: Sequence[uuid.UUID] = (),
                     exclude_signup: uuid.UUID | None = None, statuses: Sequence[RecordStatus] = COUNTING
                     ) -> Clash | None:
    """Another record of the volunteer that covers the same time: overlapping clock times, or (for
    records without clock times) a day whose hours would add up to more than 24. Callers hold the lock."""
    base = (
        select(ServiceRecord.id, Organization.name)
        .join(Organization, Organization.id == ServiceRecord.organization_id)
        .where(ServiceRecord.volunteer_id == volunteer_id, ServiceRecord.status.in_(list(statuses)))
    )
    if exclude:
        base = base.where(ServiceRecord.id.not_in(list(exclude)))
    if exclude_signup is not None:
        base = base.where(ServiceRecord.signup_id.is_distinct_from(exclude_signup))
    if window is not None:
        row = (await session.execute(
            base.where(ServiceRecord.times_recorded, ServiceRecord.started_at < window[1],
                       ServiceRecord.ended_at > window[0])
            .order_by(ServiceRecord.started_at, ServiceRecord.id).limit(1)
        )).first()
        if row is not None:
            return Clash(row[0], row[1])
    same_day = base.where(ServiceRecord.service_date == service_date).subquery("same_day")
    day_total = await session.scalar(
        select(func.coalesce(func.sum(ServiceRecord.hours), 0)).where(ServiceRecord.id.in_(select(same_day.c.id)))
    )
    if Decimal(day_total or 0) + hours > DAY_HOURS:
        row = (await session.execute(select(same_day.c.id, same_day.c.name).limit(1))).first()
        if row is not None:
            return Clash(row[0], row[1])
    return None


# Creating records

async def _person_in_charge(session: AsyncSession, account_id: uuid.UUID | None) -> str:
    if account_id is None:
        return ""
    return await session.scalar(select(Account.name).where(Account.id == account_id)) or ""


def _facts_from_task(task: Task) -> dict[str, Any]:
    return {"organization_id": task.organization_id, "activity_name": task.title, "place": task.address,
            "content": task.description}


async def credit_from_checkin(session: AsyncSession, signup_id: uuid.UUID) -> ServiceRecord | None:
    """Create the PENDING record for a checked-out sign-up. Idempotent: the sign-up is the record's unique
    key, so a redelivered or concurrent run inserts nothing (ON CONFLICT DO NOTHING) and changes nothing."""
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
    await lock_volunteers(session, [signup.volunteer_id])
    service_date = deadlines.local_date(started)
    # Crediting is never refused for an overlap (the volunteer did check in and out): the record is
    # flagged, and cannot be approved until the organizations resolve it.
    clash = await find_clash(session, signup.volunteer_id, service_date, hours, (started, ended),
                             exclude_signup=signup.id)
    due = deadlines.due_on(deadlines.local_date(ended))
    record_id = await session.scalar(
        insert(ServiceRecord)
        .values(
            id=uuid.uuid4(), volunteer_id=signup.volunteer_id, task_id=task.id, signup_id=signup.id,
            started_at=started, ended_at=ended, hours=hours, status=RecordStatus.PENDING,
            source=RecordSource.CHECK_IN, note="", service_date=service_date, due_on=due,
            late=deadlines.today() > due, overlaps_record_id=clash.record_id if clash else None,
            person_in_charge=await _person_in_charge(session, task.created_by), **_facts_from_task(task),
        )
        .on_conflict_do_nothing(index_elements=[ServiceRecord.signup_id])
        .returning(ServiceRecord.id)
    )
    if record_id is None:
        log.info("hours.credit: sign-up %s already credited", signup_id)
        return None
    audit.record(session, None, "hours.credit", "service_record", record_id, hours=str(hours),
                 overlaps=clash.record_id if clash else None)
    if clash:
        log.warning("hours.credit: record %s overlaps record %s of the same volunteer", record_id, clash.record_id)
    return await session.get(ServiceRecord, record_id)


async def _require_manages(session: AsyncSession, actor: Actor, records: Iterable[ServiceRecord], field: str
                           ) -> None:
    """The actor runs the task of each record (its organization, or the task's team), or, for an imported
    record, administers its organization."""
    records = list(records)
    task_ids = {r.task_id for r in records if r.task_id is not None}
    teams = dict((await session.execute(select(Task.id, Task.team_id).where(Task.id.in_(task_ids)))).all()) \
        if task_ids else {}
    lineage_by_org = await organizations.lineages(session, list({r.organization_id for r in records}))
    for record in records:
        lineage = lineage_by_org.get(record.organization_id, [])
        team_id = teams.get(record.task_id) if record.task_id is not None else None
        if not policies.manages_task(actor, lineage, team_id):
            policies.require_login(actor)
            raise Forbidden("FORBIDDEN", "无权管理该服务记录", field)


async def record_paper_hours(session: AsyncSession, actor: Actor, command: RecordServiceHours) -> ServiceRecord:
    """Attendance taken on paper: the organization records hours for a sign-up; they wait for approval.
    A time already credited to the same volunteer (by any organization) is refused."""
    policies.require_login(actor)
    signup = await session.scalar(select(Signup).where(Signup.id == command.signup_id).with_for_update())
    if signup is None:
        raise NotFound("SIGNUP_NOT_FOUND", "报名记录不存在", "signupId")
    task = await session.get(Task, signup.task_id)
    assert task is not None
    lineage = await organizations.lineage(session, task.organization_id)
    if not policies.manages_task(actor, lineage, task.team_id):
        raise Forbidden("FORBIDDEN", "无权管理该任务的服务时长", "signupId")
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
    started, ended = max(command.started_at, task.starts_at), min(command.ended_at, task.ends_at)
    await lock_volunteers(session, [signup.volunteer_id])
    service_date = deadlines.local_date(started)
    clash = await find_clash(session, signup.volunteer_id, service_date, hours, (started, ended),
                             exclude_signup=signup.id)
    if clash is not None:
        raise Conflict("TIME_OVERLAP", f"该志愿者在此时段已有服务记录（{clash.organization}）", "startedAt")
    due = deadlines.due_on(deadlines.local_date(ended))
    record = ServiceRecord(
        volunteer_id=signup.volunteer_id, task_id=task.id, signup_id=signup.id, started_at=started, ended_at=ended,
        hours=hours, status=RecordStatus.PENDING, source=RecordSource.PAPER, note=command.note,
        recorded_by=actor.account_id, service_date=service_date, due_on=due, late=deadlines.today() > due,
        person_in_charge=await _person_in_charge(session, actor.account_id), **_facts_from_task(task),
    )
    session.add(record)
    signup.status = SignupStatus.COMPLETED
    await session.flush()
    audit.record(session, actor.account_id, "hours.record", "service_record", record.id, hours=str(hours))
    return record


# Review

async def _lock_records(session: AsyncSession, record_ids: list[uuid.UUID], field: str = "ids"
                        ) -> list[ServiceRecord]:
    if not record_ids:
        raise Invalid("NO_RECORDS", "请选择要审核的记录", field)
    if len(record_ids) > MAX_BULK:
        raise Invalid("TOO_MANY_RECORDS", f"一次最多审核 {MAX_BULK} 条", field)
    unique_ids = list(dict.fromkeys(record_ids))
    volunteer_ids = (await session.scalars(
        select(ServiceRecord.volunteer_id).where(ServiceRecord.id.in_(unique_ids))
    )).all()
    await lock_volunteers(session, volunteer_ids)
    records = (await session.scalars(
        select(ServiceRecord).where(ServiceRecord.id.in_(unique_ids)).order_by(ServiceRecord.id).with_for_update()
    )).all()
    if len(records) != len(unique_ids):
        raise NotFound("RECORD_NOT_FOUND", "部分服务记录不存在", field)
    by_id = {r.id: r for r in records}
    return [by_id[i] for i in unique_ids]


async def _approve(session: AsyncSession, records: Sequence[ServiceRecord], account_id: uuid.UUID | None,
                   *, skip_clashes: bool = False) -> list[ServiceRecord]:
    """Approve the PENDING ones among `records` (volunteers locked by the caller). A record whose time is
    already held by another pending or approved record is refused (or skipped, for the automatic run)."""
    now, today = datetime.now(UTC), deadlines.today()
    approved: list[ServiceRecord] = []
    for record in records:
        if record.status is not RecordStatus.PENDING:
            continue
        clash = await find_clash(
            session, record.volunteer_id, record.service_date, record.hours,
            (record.started_at, record.ended_at) if record.times_recorded else None,
            exclude=[record.id], statuses=COUNTING,
        )
        if clash is not None:
            if skip_clashes:
                continue
            raise Conflict("RECORD_OVERLAPS", f"该记录与同一志愿者的另一条记录时间重叠（{clash.organization}），"
                           "请先驳回其中一条", "ids")
        record.status = RecordStatus.APPROVED
        record.approved_by = account_id
        record.approved_at = now
        record.auto_approved = account_id is None
        record.late = record.late or today > record.due_on
        approved.append(record)
        audit.record(session, account_id, "hours.auto_approve" if account_id is None else "hours.approve",
                     "service_record", record.id, hours=str(record.hours), late=record.late)
        await notifications.notify(session, volunteer_id=record.volunteer_id, kind="hours.approved",
                                   payload={"recordId": str(record.id), "hours": str(record.hours)},
                                   dedupe_key=f"hours.approved:{record.id}")
        await session.flush()
    await recompute_totals(session, {r.volunteer_id for r in approved})
    await rollups.touch(session, [(r.started_at, r.organization_id, r.task_id) for r in approved])
    return approved


async def approve_records(session: AsyncSession, actor: Actor, record_ids: list[uuid.UUID]) -> list[ServiceRecord]:
    """Approve PENDING records in bulk; approving an already approved record changes nothing."""
    policies.require_login(actor)
    records = await _lock_records(session, record_ids)
    await _require_manages(session, actor, records, "ids")
    if any(r.status is RecordStatus.REJECTED for r in records):
        raise Conflict("RECORD_REJECTED", "已驳回的记录不能审核通过", "ids")
    await _approve(session, records, actor.account_id)
    return records


async def reject_records(session: AsyncSession, actor: Actor, command: RejectServiceRecords) -> list[ServiceRecord]:
    """Reject PENDING records in bulk, with a reason. An approved record is final: it cannot be rejected
    (correct it with an adjustment instead). Rejecting an already rejected record changes nothing."""
    policies.require_login(actor)
    records = await _lock_records(session, command.ids)
    await _require_manages(session, actor, records, "ids")
    if any(r.status is RecordStatus.APPROVED for r in records):
        raise Conflict("RECORD_FINAL", "已审核通过的记录不能驳回，请使用更正", "ids")
    now = datetime.now(UTC)
    for record in records:
        if record.status is RecordStatus.PENDING:
            record.status = RecordStatus.REJECTED
            record.rejected_by, record.rejected_at, record.rejected_reason = actor.account_id, now, command.reason
            audit.record(session, actor.account_id, "hours.reject", "service_record", record.id,
                         hours=str(record.hours), reason=command.reason)
            await notifications.notify(session, volunteer_id=record.volunteer_id, kind="hours.rejected",
                                       payload={"recordId": str(record.id)})
    await session.flush()
    await rollups.touch(session, [(r.started_at, r.organization_id, r.task_id) for r in records])
    return records


async def set_auto_approval(session: AsyncSession, actor: Actor, command: SetAutoApproval
                            ) -> OrganizationHoursSettings:
    """Turn on (N days) or off (None) automatic approval of an organization's PENDING records."""
    lineage = await organizations.lineage(session, command.organization_id)
    if not lineage:
        raise NotFound("ORGANIZATION_NOT_FOUND", "组织不存在", "organizationId")
    policies.require_manages_organization(actor, lineage)
    await session.execute(
        insert(OrganizationHoursSettings)
        .values(organization_id=command.organization_id, auto_approve_after_days=command.days,
                updated_by=actor.account_id)
        .on_conflict_do_update(index_elements=[OrganizationHoursSettings.organization_id],
                               set_={"auto_approve_after_days": command.days, "updated_by": actor.account_id,
                                     "updated_at": func.now()})
    )
    audit.record(session, actor.account_id, "hours.auto_approval", "organization", command.organization_id,
                 days=command.days)
    found = await session.get(OrganizationHoursSettings, command.organization_id, populate_existing=True)
    assert found is not None
    return found


async def auto_approve(session: AsyncSession, now: datetime | None = None, limit: int = MAX_BULK) -> int:
    """Approve the PENDING records of organizations that asked for it, N days after they were recorded.
    State-guarded (only PENDING rows), so a second run approves nothing new. Overlapping ones are left
    for a person to resolve."""
    now = now or datetime.now(UTC)
    configured = (await session.execute(
        select(OrganizationHoursSettings.organization_id, OrganizationHoursSettings.auto_approve_after_days)
        .where(OrganizationHoursSettings.auto_approve_after_days.is_not(None))
        .order_by(OrganizationHoursSettings.organization_id)
    )).all()
    total = 0
    for org_id, days in configured:
        assert days is not None
        ids = (await session.scalars(
            select(ServiceRecord.id).where(
                ServiceRecord.organization_id == org_id, ServiceRecord.status == RecordStatus.PENDING,
                ServiceRecord.created_at <= now - timedelta(days=days),
            ).order_by(ServiceRecord.id).limit(limit)
        )).all()
        if ids:
            records = await _lock_records(session, list(ids))
            total += len(await _approve(session, records, None, skip_clashes=True))
    return total


async def mark_late_and_remind(session: AsyncSession, on: date | None = None) -> dict[str, int]:
    """Daily: PENDING records past their recording deadline are marked late; organizations with records
    due soon (or late) get one reminder a day per admin. Idempotent within a day."""
    on = on or deadlines.today()
    late_ids = (await session.scalars(
        update(ServiceRecord)
        .where(ServiceRecord.status == RecordStatus.PENDING, ServiceRecord.due_on < on, ServiceRecord.late.is_(False))
        .values(late=True).returning(ServiceRecord.id)
    )).all()
    for record_id in sorted(late_ids):
        audit.record(session, None, "hours.late", "service_record", record_id)
    horizon = deadlines.warning_horizon(on)
    rows = (await session.execute(
        select(ServiceRecord.organization_id, func.count(), func.min(ServiceRecord.due_on),
               func.count().filter(ServiceRecord.due_on < on))
        .where(ServiceRecord.status == RecordStatus.PENDING, ServiceRecord.due_on <= horizon)
        .group_by(ServiceRecord.organization_id).order_by(ServiceRecord.organization_id)
    )).all()
    reminders = 0
    for org_id, count, earliest, overdue in rows:
        reminders += await notifications.notify_organization(
            session, org_id, kind="hours.deadline",
            payload={"organizationId": str(org_id), "pending": int(count), "late": int(overdue),
                     "earliestDueOn": earliest.isoformat()},
            dedupe_prefix=f"hours.deadline:{org_id}:{on.isoformat()}",
        )
    return {"late": len(late_ids), "reminders": reminders}


# Reading

@dataclass(frozen=True)
class HistoryEvent:
    at: datetime
    action: str
    actor_name: str | None
    data: dict[str, Any]


async def visible_record(session: AsyncSession, actor: Actor, record_id: uuid.UUID, field: str = "recordId"
                         ) -> ServiceRecord:
    """The record, if the actor is its volunteer or manages it; NotFound otherwise (no existence leak)."""
    policies.require_login(actor)
    record = await session.get(ServiceRecord, record_id)
    if record is None:
        raise NotFound("RECORD_NOT_FOUND", "服务记录不存在", field)
    if record.volunteer_id != actor.volunteer_id:
        try:
            await _require_manages(session, actor, [record], field)
        except Forbidden:
            raise NotFound("RECORD_NOT_FOUND", "服务记录不存在", field) from None
    return record


async def record_history(session: AsyncSession, actor: Actor, record_id: uuid.UUID) -> list[HistoryEvent]:
    """Everything that happened to a record, oldest first: credited or recorded, approved or rejected, late,
    correction requests and their decisions, adjustments. Read from the audit trail."""
    record = await visible_record(session, actor, record_id)
    rows = (await session.execute(
        select(AuditEntry.at, AuditEntry.action, Account.name, AuditEntry.data)
        .outerjoin(Account, Account.id == AuditEntry.actor_account_id)
        .where(AuditEntry.entity_type == "service_record", AuditEntry.entity_id == str(record.id))
        .order_by(AuditEntry.at, AuditEntry.id)
    )).all()
    return [HistoryEvent(at=r[0], action=r[1], actor_name=r[2], data=dict(r[3] or {})) for r in rows]


REVIEW_ORDER = (ServiceRecord.due_on, ServiceRecord.id)


async def records_for_review(session: AsyncSession, actor: Actor, organization_id: uuid.UUID, *,
                             status: RecordStatus = RecordStatus.PENDING, due_soon: bool = False, late: bool = False,
                             first: int | None = None, after: str | None = None) -> Page[ServiceRecord]:
    """An organization's records by recording deadline, soonest first; `due_soon` keeps those within the
    warning window (and the late ones), `late` only those past their deadline."""
    lineage = await organizations.lineage(session, organization_id)
    if not lineage:
        raise NotFound("ORGANIZATION_NOT_FOUND", "组织不存在", "organizationId")
    policies.require_manages_organization(actor, lineage)
    size = page_size(first)
    on = deadlines.today()
    query = select(ServiceRecord).where(ServiceRecord.organization_id == organization_id,
                                        ServiceRecord.status == status)
    if due_soon:
        query = query.where(ServiceRecord.due_on <= deadlines.warning_horizon(on))
    if late:
        query = query.where((ServiceRecord.due_on < on) | ServiceRecord.late)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    if after:
        due, record_id = decode_cursor(after, (str, uuid.UUID))
        query = query.where(keyset_after(REVIEW_ORDER, (date.fromisoformat(due), record_id)))
    rows = list((await session.scalars(query.order_by(*REVIEW_ORDER).limit(size + 1))).all())
    shown = rows[:size]
    return Page(items=shown, cursors=[encode_cursor((r.due_on.isoformat(), r.id)) for r in shown],
                has_next=len(rows) > size, total_count=int(total or 0))
