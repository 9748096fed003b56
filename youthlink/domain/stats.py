"""City statistics, computed from the ledger (approved records plus adjustments).

A period is a range of calendar days in the city's time zone. Hours count toward the day the service
started; an adjustment counts with the record it corrects.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.config import get_settings
from youthlink.db.models import Task, Volunteer
from youthlink.db.models.enums import TaskStatus
from youthlink.domain import policies
from youthlink.domain.actor import Actor
from youthlink.domain.hours import STAR_THRESHOLDS, ledger_entries
from youthlink.domain.inputs import StatsPeriod


@dataclass
class Breakdown:
    key: uuid.UUID
    hours: Decimal
    volunteers: int
    tasks: int = 0


@dataclass
class Month:
    month: str
    hours: Decimal
    active_volunteers: int
    new_volunteers: int


@dataclass
class CityStats:
    registered_volunteers: int
    active_volunteers: int
    total_hours: Decimal
    tasks_published: int
    slots_offered: int
    slots_filled: int
    by_organization: list[Breakdown] = field(default_factory=list)
    by_town: list[Breakdown] = field(default_factory=list)
    by_project: list[Breakdown] = field(default_factory=list)
    monthly: list[Month] = field(default_factory=list)
    star_levels: list[tuple[int, int]] = field(default_factory=list)

    @property
    def fill_rate(self) -> float:
        return round(self.slots_filled / self.slots_offered, 4) if self.slots_offered else 0.0


def period_bounds(period: StatsPeriod) -> tuple[datetime, datetime]:
    tz = ZoneInfo(get_settings().city_timezone)
    return (datetime.combine(period.from_, time(), tz),
            datetime.combine(period.to + timedelta(days=1), time(), tz))


def entries_in(start: datetime, end: datetime) -> Select[Any]:
    entries = ledger_entries().subquery("entries")
    return select(entries).where(entries.c.started_at >= start, entries.c.started_at < end)


def _star_case(column: Any) -> Any:
    return case(*[(column >= t, literal(i + 1)) for i, t in reversed(list(enumerate(STAR_THRESHOLDS)))],
                else_=literal(0))


async def city_stats(session: AsyncSession, actor: Actor, period: StatsPeriod) -> CityStats:
    policies.require_city_admin(actor)
    start, end = period_bounds(period)
    entries = entries_in(start, end).subquery("ledger")
    tz = get_settings().city_timezone

    totals = (await session.execute(
        select(func.coalesce(func.sum(entries.c.hours), 0), func.count(func.distinct(entries.c.volunteer_id)))
    )).one()
    registered = await session.scalar(select(func.count()).select_from(Volunteer).where(Volunteer.created_at < end))
    published = (await session.execute(
        select(func.count(), func.coalesce(func.sum(Task.slots), 0), func.coalesce(func.sum(Task.filled_slots), 0))
        .where(Task.starts_at >= start, Task.starts_at < end,
               Task.status.in_((TaskStatus.OPEN, TaskStatus.CLOSED, TaskStatus.COMPLETED)))
    )).one()

    # Offline (imported) records have no task: they count for their organization, not a town or project.
    joined = select(entries, Task.town_id, Task.project_id).outerjoin(
        Task, Task.id == entries.c.task_id
    ).subquery("joined")

    async def breakdown(column: Any) -> list[Breakdown]:
        rows = await session.execute(
            select(column, func.sum(joined.c.hours), func.count(func.distinct(joined.c.volunteer_id)),
                   func.count(func.distinct(joined.c.task_id)))
            .where(column.is_not(None)).group_by(column).order_by(func.sum(joined.c.hours).desc(), column)
        )
        return [Breakdown(key=r[0], hours=Decimal(r[1]), volunteers=r[2], tasks=r[3]) for r in rows]

    month_of = func.to_char(func.timezone(tz, joined.c.started_at), "YYYY-MM")
    monthly_rows = {
        r[0]: r for r in await session.execute(
            select(month_of, func.sum(joined.c.hours), func.count(func.distinct(joined.c.volunteer_id)))
            .group_by(month_of)
        )
    }
    new_of = func.to_char(func.timezone(tz, Volunteer.created_at), "YYYY-MM")
    new_rows: dict[str, int] = dict((await session.execute(
        select(new_of, func.count()).where(Volunteer.created_at >= start, Volunteer.created_at < end).group_by(new_of)
    )).all())
    months = []
    cursor = period.from_.replace(day=1)
    while cursor <= period.to:
        key = cursor.strftime("%Y-%m")
        row = monthly_rows.get(key)
        months.append(Month(key, Decimal(row[1]) if row else Decimal(0), row[2] if row else 0, new_rows.get(key, 0)))
        cursor = (cursor + timedelta(days=32)).replace(day=1)

    level = _star_case(Volunteer.total_hours)
    star_rows: dict[int, int] = dict((await session.execute(
        select(level, func.count()).where(Volunteer.created_at < end).group_by(level)
    )).all())

    return CityStats(
        registered_volunteers=int(registered or 0),
        active_volunteers=int(totals[1]),
        total_hours=Decimal(totals[0]),
        tasks_published=int(published[0]),
        slots_offered=int(published[1]),
        slots_filled=int(published[2]),
        by_organization=await breakdown(joined.c.organization_id),
        by_town=await breakdown(joined.c.town_id),
        by_project=await breakdown(joined.c.project_id),
        monthly=months,
        star_levels=[(lvl, int(star_rows.get(lvl, 0))) for lvl in range(len(STAR_THRESHOLDS) + 1)],
    )


