"""Corrections: an approved record never changes; a correction is a new, reasoned, approved adjustment
linked to it. A volunteer may ask for one (what, why); the organization accepts it (as an adjustment) or
declines it, each with a reason. Every step is in the record's history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.db.models import Adjustment, CorrectionRequest, ServiceRecord
from youthlink.db.models.enums import RecordStatus
from youthlink.db.models.hours import CorrectionStatus
from youthlink.domain import audit, notifications, policies, rollups
from youthlink.domain.actor import Actor
from youthlink.domain.hours.commands import DecideCorrection, RequestCorrection
from youthlink.domain.hours.ledger import recompute_totals
from youthlink.domain.hours.records import _require_manages, lock_volunteers
from youthlink.domain.inputs import AdjustServiceRecord
from youthlink.errors import Conflict, Forbidden, Invalid, NotFound


async def _record_for_update(session: AsyncSession, record_id: uuid.UUID, field: str) -> ServiceRecord:
    volunteer_id = await session.scalar(select(ServiceRecord.volunteer_id).where(ServiceRecord.id == record_id))
    if volunteer_id is None:
        raise NotFound("RECORD_NOT_FOUND", "服务记录不存在", field)
    await lock_volunteers(session, [volunteer_id])
    record = await session.scalar(select(ServiceRecord).where(ServiceRecord.id == record_id).with_for_update())
    assert record is not None
    return record


async def _corrected_hours(session: AsyncSession, record: ServiceRecord, change: Decimal) -> Decimal:
    already = await session.scalar(
        select(func.coalesce(func.sum(Adjustment.hours), 0)).where(Adjustment.record_id == record.id)
    )
    return record.hours + Decimal(already or 0) + change


async def _check_range(session: AsyncSession, record: ServiceRecord, change: Decimal) -> None:
    corrected = await _corrected_hours(session, record, change)
    if corrected < 0 or corrected > 24:
        raise Invalid("ADJUSTMENT_OUT_OF_RANGE", f"更正后时长须在 0 到 24 小时之间（当前 {corrected}）", "hours")


async def _adjust(session: AsyncSession, actor: Actor, record: ServiceRecord, hours: Decimal, reason: str,
                  request_id: uuid.UUID | None = None) -> Adjustment:
    if record.status is not RecordStatus.APPROVED:
        raise Conflict("RECORD_NOT_APPROVED", "只能更正已审核通过的记录", "recordId")
    await _check_range(session, record, hours)
    assert actor.account_id is not None
    adjustment = Adjustment(record_id=record.id, volunteer_id=record.volunteer_id, hours=hours, reason=reason,
                            created_by=actor.account_id)
    session.add(adjustment)
    await session.flush()
    audit.record(session, actor.account_id, "hours.adjust", "service_record", record.id,
                 adjustment_id=adjustment.id, hours=str(hours), reason=reason, correction_request_id=request_id)
    await notifications.notify(session, volunteer_id=record.volunteer_id, kind="hours.corrected",
                               payload={"recordId": str(record.id), "adjustmentId": str(adjustment.id),
                                        "hours": str(hours)},
                               dedupe_key=f"hours.corrected:{adjustment.id}")
    await recompute_totals(session, {record.volunteer_id})
    await rollups.touch(session, [(record.started_at, record.organization_id, record.task_id)])
    return adjustment


async def adjust_record(session: AsyncSession, actor: Actor, command: AdjustServiceRecord) -> Adjustment:
    """The organization corrects an approved record: a new, reasoned entry; the record stays as it was."""
    policies.require_login(actor)
    record = await _record_for_update(session, command.record_id, "recordId")
    await _require_manages(session, actor, [record], "recordId")
    return await _adjust(session, actor, record, command.hours, command.reason)


async def request_correction(session: AsyncSession, actor: Actor, command: RequestCorrection) -> CorrectionRequest:
    """The volunteer asks the organization to correct one of their approved records."""
    volunteer_id = policies.require_volunteer(actor)
    record = await _record_for_update(session, command.record_id, "recordId")
    if record.volunteer_id != volunteer_id:
        raise Forbidden("FORBIDDEN", "只能对自己的服务记录申请更正", "recordId")
    if record.status is not RecordStatus.APPROVED:
        raise Conflict("RECORD_NOT_APPROVED", "只能对已审核通过的记录申请更正（待审核的记录请联系组织）", "recordId")
    open_request = await session.scalar(select(CorrectionRequest.id).where(
        CorrectionRequest.record_id == record.id, CorrectionRequest.status == CorrectionStatus.OPEN))
    if open_request is not None:
        raise Conflict("CORRECTION_PENDING", "该记录已有待处理的更正申请", "recordId")
    await _check_range(session, record, command.hours)
    assert actor.account_id is not None
    request = CorrectionRequest(record_id=record.id, volunteer_id=volunteer_id, hours=command.hours,
                                what=command.what, why=command.why, status=CorrectionStatus.OPEN,
                                requested_by=actor.account_id)
    session.add(request)
    await session.flush()
    audit.record(session, actor.account_id, "hours.correction_request", "service_record", record.id,
                 correction_request_id=request.id, hours=str(command.hours), what=command.what, why=command.why)
    await notifications.notify_organization(
        session, record.organization_id, kind="hours.correction_requested",
        payload={"recordId": str(record.id), "correctionRequestId": str(request.id)},
    )
    return request


async def decide_correction(session: AsyncSession, actor: Actor, command: DecideCorrection) -> CorrectionRequest:
    """Accept (as an approved adjustment with the reason, linked to the record) or decline, with a reason."""
    policies.require_login(actor)
    record_id = await session.scalar(
        select(CorrectionRequest.record_id).where(CorrectionRequest.id == command.request_id))
    if record_id is None:
        raise NotFound("CORRECTION_NOT_FOUND", "更正申请不存在", "requestId")
    record = await _record_for_update(session, record_id, "requestId")
    await _require_manages(session, actor, [record], "requestId")
    request = await session.scalar(
        select(CorrectionRequest).where(CorrectionRequest.id == command.request_id).with_for_update())
    assert request is not None
    if request.status is not CorrectionStatus.OPEN:
        raise Conflict("CORRECTION_DECIDED", "该更正申请已处理", "requestId")
    if command.accept:
        hours = command.hours if command.hours is not None else request.hours
        adjustment = await _adjust(session, actor, record, hours, command.reason, request_id=request.id)
        request.status, request.adjustment_id = CorrectionStatus.ACCEPTED, adjustment.id
    else:
        request.status = CorrectionStatus.DECLINED
    # Set together with the status (the row's CHECK ties them): decided, by whom, when, why.
    request.decided_by, request.decided_at, request.decision_reason = actor.account_id, datetime.now(UTC), \
        command.reason
    if not command.accept:
        audit.record(session, actor.account_id, "hours.correction_decline", "service_record", record.id,
                     correction_request_id=request.id, reason=command.reason)
    await session.flush()
    await notifications.notify(
        session, volunteer_id=record.volunteer_id, kind="hours.correction_decided",
        payload={"recordId": str(record.id), "correctionRequestId": str(request.id), "status": request.status.value},
    )
    return request


async def corrections_of(session: AsyncSession, record_ids: list[uuid.UUID]) -> list[CorrectionRequest]:
    return list((await session.scalars(
        select(CorrectionRequest).where(CorrectionRequest.record_id.in_(record_ids))
        .order_by(CorrectionRequest.created_at, CorrectionRequest.id)
    )).all())
