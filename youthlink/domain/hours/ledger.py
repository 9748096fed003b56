"""The ledger: approved records plus every adjustment. The one definition of a volunteer's hours.

Totals on `volunteers.total_hours` are derived from it in the transaction that changes it (never
incremented blindly), and a nightly reconciliation recomputes every total and reports any drift.
Star levels follow the total; reaching one is recorded once, in order, and notified.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Integer, Numeric, Select, column, false, func, select, true, update, values
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.config import get_settings
from youthlink.db.models import Adjustment, ServiceRecord, StarLevelAward, Volunteer
from youthlink.db.models.enums import RecordStatus
from youthlink.domain import audit, notifications

log = logging.getLogger(__name__)

STAR_THRESHOLDS = (Decimal(100), Decimal(300), Decimal(600), Decimal(1000), Decimal(1500))


def star_level(total_hours: Decimal) -> int:
    """1 star at 100 h, 2 at 300, 3 at 600, 4 at 1,000, 5 at 1,500 (中国注册志愿者管理办法)."""
    return sum(1 for threshold in STAR_THRESHOLDS if total_hours >= threshold)


def round_hours(exact: Decimal) -> Decimal:
    """To the configured step (0.1 h), down by default: the issuer never over-credits."""
    settings = get_settings()
    step = settings.hours_step
    mode = ROUND_FLOOR if settings.hours_rounding == "down" else ROUND_HALF_UP
    return (exact / step).to_integral_value(rounding=mode) * step


def served_hours(presence: tuple[datetime, datetime], window: tuple[datetime, datetime]) -> Decimal:
    """Hours of presence inside the task's window (travel outside it does not count), rounded."""
    start, end = max(presence[0], window[0]), min(presence[1], window[1])
    seconds = max((end - start).total_seconds(), 0.0)
    return round_hours(Decimal(seconds) / Decimal(3600))


def ledger_entries() -> Any:
    """Approved records plus every adjustment (dated by its record): volunteer, task, start, hours, organization,
    record, and whether the entry is the record itself (`is_record`: counting those counts the records, as
    adjustments are made to approved records only, without the sort a count of distinct record ids needs)."""
    records = select(
        ServiceRecord.volunteer_id, ServiceRecord.task_id, ServiceRecord.started_at, ServiceRecord.hours,
        ServiceRecord.organization_id, ServiceRecord.id.label("record_id"), true().label("is_record"),
    ).where(ServiceRecord.status == RecordStatus.APPROVED)
    adjustments = select(
        ServiceRecord.volunteer_id, ServiceRecord.task_id, ServiceRecord.started_at, Adjustment.hours,
        ServiceRecord.organization_id, Adjustment.record_id, false().label("is_record"),
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
    """Set each volunteer's total from the ledger, then record (and notify) any star level newly reached."""
    if not volunteer_ids:
        return
    totals = {row.volunteer_id: row.total for row in await session.execute(ledger_totals(volunteer_ids))}
    for volunteer_id in sorted(volunteer_ids):
        await session.execute(
            update(Volunteer).where(Volunteer.id == volunteer_id).values(
                total_hours=totals.get(volunteer_id, Decimal(0))
            )
        )
    await award_star_levels(session, volunteer_ids)


async def award_star_levels(session: AsyncSession, volunteer_ids: set[uuid.UUID] | None = None
                            ) -> list[tuple[uuid.UUID, int]]:
    """Record every level each volunteer's total has reached and that is not yet recorded, lowest first.

    One INSERT ... ON CONFLICT DO NOTHING over (volunteer, level): levels are reached in order (a jump from
    0 to 300 h records 1 then 2), each once however often this runs; each new one is notified once.
    """
    levels = values(column("level", Integer), column("threshold", Numeric), name="levels").data(
        [(i + 1, t) for i, t in enumerate(STAR_THRESHOLDS)]
    )
    reached = (
        select(Volunteer.id, levels.c.level, Volunteer.total_hours)
        .join(levels, Volunteer.total_hours >= levels.c.threshold)
        .order_by(Volunteer.id, levels.c.level)
    )
    if volunteer_ids is not None:
        reached = reached.where(Volunteer.id.in_(sorted(volunteer_ids)))
    inserted = (await session.execute(
        insert(StarLevelAward)
        .from_select(["volunteer_id", "level", "total_hours"], reached)
        .on_conflict_do_nothing(index_elements=[StarLevelAward.volunteer_id, StarLevelAward.level])
        .returning(StarLevelAward.volunteer_id, StarLevelAward.level, StarLevelAward.total_hours)
    )).all()
    awarded = sorted((row.volunteer_id, row.level) for row in inserted)
    for row in sorted(inserted, key=lambda r: (r.volunteer_id, r.level)):
        audit.record(session, None, "hours.star_level", "volunteer", row.volunteer_id, level=row.level,
                     total_hours=str(row.total_hours))
        await notifications.notify(
            session, volunteer_id=row.volunteer_id, kind="star_level.reached",
            payload={"level": row.level, "totalHours": str(row.total_hours)},
            dedupe_key=f"star_level:{row.volunteer_id}:{row.level}",
        )
    return awarded


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


async def reconcile(session: AsyncSession) -> int:
    """The nightly check: every total recomputed from the ledger. Returns the drift, which must be zero.

    A non-zero drift is corrected, logged as an error and written to the audit trail, so it is seen.
    """
    drifted = await rebuild_totals(session)
    await award_star_levels(session)
    if drifted:
        log.error("hours.reconcile: %s volunteer totals had drifted from the ledger and were corrected", drifted)
    else:
        log.info("hours.reconcile: every total matches the ledger")
    audit.record(session, None, "hours.reconcile", "ledger", "volunteers", drift=drifted)
    return drifted


__all__ = [
    "STAR_THRESHOLDS",
    "award_star_levels",
    "ledger_entries",
    "ledger_totals",
    "rebuild_totals",
    "recompute_totals",
    "reconcile",
    "round_hours",
    "served_hours",
    "star_level",
]
