"""Statistics rollups, kept current from the ledger.

A service that changes the ledger (approval, adjustment, rejection) or a task's no-shows calls `touch()` in its
own transaction: that records one `stats.refresh` job (outbox) naming the touched buckets. The job recomputes
those buckets from the ledger and upserts them (never an increment, so running it twice, late or out of order
leaves the same rows). The nightly `stats.rebuild` recomputes every row, reports how many differed (which must
be none) and puts them right.

Both also recompute `stats_volunteers` (registered volunteers by registration month and star level): a star
level changes only with approved hours, which always record a refresh; registrations are not waited for, the
statistics count the ones since the table was computed live (`refresh_volunteers`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, SmallInteger, case, cast, delete, func, literal, null, select, text, union_all
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.config import get_settings
from youthlink.db.models import Organization, Signup, StatsRollup, StatsVolunteers, Task, Volunteer
from youthlink.db.models.enums import SignupStatus
from youthlink.db.models.stats import NIL
from youthlink.domain import audit, outbox
from youthlink.domain.hours.ledger import STAR_THRESHOLDS, ledger_entries

log = logging.getLogger(__name__)

PERIODS = ("month", "quarter", "year")
DIMENSIONS = ("city", "organization", "town", "project", "team")
Bucket = tuple[date, uuid.UUID, uuid.UUID]


def city_day(moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(get_settings().city_timezone)).date()


def period_start(day: date, period: str) -> date:
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    return date(day.year, 1, 1)


def period_end(start: date, period: str) -> date:
    """The first day after the period."""
    months = {"month": 1, "quarter": 3, "year": 12}[period]
    month = start.month - 1 + months
    return date(start.year + month // 12, month % 12 + 1, 1)


def _bounds(first: date, last: date) -> tuple[datetime, datetime]:
    tz = ZoneInfo(get_settings().city_timezone)
    return datetime.combine(first, datetime.min.time(), tz), datetime.combine(last + timedelta(days=1),
                                                                              datetime.min.time(), tz)


async def touch(session: AsyncSession, buckets: Iterable[tuple[datetime, uuid.UUID, uuid.UUID | None]]) -> None:
    """Record a `stats.refresh` for the buckets of these (start, organization, task) facts, in the caller's
    transaction. Nothing is recorded when nothing was touched."""
    keys = sorted({(city_day(start), org, task or NIL) for start, org, task in buckets})
    if keys:
        await outbox.record_job(session, "stats.refresh",
                                buckets=[[d.isoformat(), str(o), str(t)] for d, o, t in keys])


def parse_buckets(raw: Iterable[Iterable[str]]) -> list[Bucket]:
    return [(date.fromisoformat(d), uuid.UUID(o), uuid.UUID(t)) for d, o, t in raw]


# The facts: ledger entries (hours, a record) and no-shows (dated by their task's start), in the city's days.

def facts(first: date | None = None, last: date | None = None, organizations: Iterable[uuid.UUID] | None = None,
          volunteer_id: uuid.UUID | None = None) -> Any:
    """One row per ledger entry or no-show: day, organization, task, town, project, team, volunteer (NULL for a
    no-show), hours, record, no_show. Optionally limited to days, organizations or one volunteer."""
    tz = get_settings().city_timezone
    entries = ledger_entries().subquery("entries")
    ledger = select(
        entries.c.started_at.label("at"), entries.c.organization_id, entries.c.task_id,
        entries.c.volunteer_id, entries.c.hours, entries.c.record_id, literal(0).label("no_show"),
    )
    no_shows = select(
        Task.starts_at.label("at"), Task.organization_id, Task.id.label("task_id"), null().label("volunteer_id"),
        literal(Decimal(0)).label("hours"), null().label("record_id"), literal(1).label("no_show"),
    ).join(Signup, Signup.task_id == Task.id).where(Signup.recorded_status == SignupStatus.NO_SHOW)
    if first is not None and last is not None:
        start, end = _bounds(first, last)
        ledger = ledger.where(entries.c.started_at >= start, entries.c.started_at < end)
        no_shows = no_shows.where(Task.starts_at >= start, Task.starts_at < end)
    if organizations is not None:
        orgs = sorted(set(organizations))
        ledger = ledger.where(entries.c.organization_id.in_(orgs))
        no_shows = no_shows.where(Task.organization_id.in_(orgs))
    if volunteer_id is not None:
        ledger = ledger.where(entries.c.volunteer_id == volunteer_id)
        no_shows = no_shows.where(Signup.volunteer_id == volunteer_id)
    both = union_all(ledger, no_shows).subquery("both")
    return (
        select(
            cast(func.timezone(tz, both.c.at), Date).label("day"), both.c.organization_id, both.c.task_id,
            Task.town_id, Task.project_id, Task.team_id, both.c.volunteer_id, both.c.hours, both.c.record_id,
            both.c.no_show,
        )
        .outerjoin(Task, Task.id == both.c.task_id)
        .subquery("facts")
    )


def org_closure() -> Any:
    """(organization, ancestor) for every organization and each of its ancestors, itself included."""
    base = select(Organization.id.label("organization_id"), Organization.id.label("ancestor_id")).cte(
        "closure", recursive=True)
    parent = select(base.c.organization_id, Organization.parent_id.label("ancestor_id")).join(
        Organization, Organization.id == base.c.ancestor_id).where(Organization.parent_id.is_not(None))
    return base.union_all(parent)


def _bucket_rows(f: Any) -> Any:
    """Sums per (day, organization, task) from facts: the grain the direct computation groups up from."""
    task_key = func.coalesce(f.c.task_id, literal(NIL))
    return (
        select(
            f.c.day, f.c.organization_id, task_key.label("task_id"), f.c.town_id, f.c.project_id, f.c.team_id,
            func.coalesce(func.sum(f.c.hours), 0).label("hours"),
            func.count(func.distinct(f.c.record_id)).label("records"),
            func.coalesce(func.sum(f.c.no_show), 0).label("no_shows"),
        )
        .group_by(f.c.day, f.c.organization_id, task_key, f.c.town_id, f.c.project_id, f.c.team_id)
    )


def _key_column(f: Any, dimension: str, closure: Any) -> Any:
    return {"city": literal(NIL), "organization": closure.c.ancestor_id if closure is not None else None,
            "town": f.c.town_id, "project": f.c.project_id, "team": f.c.team_id}[dimension]


FIGURES = ("hours", "records", "attended", "no_shows", "tasks", "volunteers")


def period_figures(f: Any, period: str, dimension: str, keys: Iterable[uuid.UUID] | None = None) -> Any:
    """(period_start, key, hours, records, attended, no_shows, tasks, volunteers) per calendar period and key of
    a dimension; an organization's figures include all its children's."""
    closure = org_closure() if dimension == "organization" else None
    key = _key_column(f, dimension, closure)
    start = cast(func.date_trunc(period, f.c.day), Date)
    query = select(
        start.label("period_start"), key.label("key"),
        func.coalesce(func.sum(f.c.hours), 0).label("hours"),
        func.count(func.distinct(f.c.record_id)).label("records"),
        func.count(func.distinct(f.c.record_id)).filter(f.c.task_id.is_not(None)).label("attended"),
        func.coalesce(func.sum(f.c.no_show), 0).label("no_shows"),
        func.count(func.distinct(f.c.task_id)).filter(f.c.record_id.is_not(None)).label("tasks"),
        func.count(func.distinct(f.c.volunteer_id)).label("volunteers"),
    ).where(key.is_not(None))
    if closure is not None:
        query = query.join(closure, closure.c.organization_id == f.c.organization_id)
    if keys is not None:
        query = query.where(key.in_(sorted(set(keys))))
    return query.group_by(start, key)


async def _upsert(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    for chunk in range(0, len(rows), 1000):
        statement = insert(StatsRollup).values(rows[chunk:chunk + 1000])
        await session.execute(statement.on_conflict_do_update(
            index_elements=[StatsRollup.period, StatsRollup.period_start, StatsRollup.dimension, StatsRollup.key],
            set_={name: statement.excluded[name] for name in FIGURES},
        ))


def _row(period: str, dimension: str, r: Any) -> dict[str, Any]:
    return {"period": period, "period_start": r.period_start, "dimension": dimension, "key": r.key,
            **{name: getattr(r, name) for name in FIGURES}}


async def refresh(session: AsyncSession, buckets: list[Bucket]) -> dict[str, int]:
    """Recompute, from the ledger, every rollup row the touched buckets (day × organization × task) fall in:
    each calendar period of those days × the city, the organizations and their ancestors, the tasks' towns,
    projects and teams. Upserted; rows left without figures are dropped. Idempotent."""
    if not buckets:
        return {"rows": 0}
    keys = sorted(set(buckets))
    days = [k[0] for k in keys]
    orgs = sorted({k[1] for k in keys})
    task_ids = sorted({k[2] for k in keys} - {NIL})
    dims: dict[str, set[uuid.UUID]] = {"city": {NIL}, "town": set(), "project": set(), "team": set()}
    for town, project, team in (await session.execute(
            select(Task.town_id, Task.project_id, Task.team_id).where(Task.id.in_(task_ids)))).all():
        for name, value in (("town", town), ("project", project), ("team", team)):
            if value is not None:
                dims[name].add(value)
    closure = org_closure()
    dims["organization"] = set((await session.scalars(
        select(closure.c.ancestor_id).where(closure.c.organization_id.in_(orgs)))).all())
    written = 0
    for period in PERIODS:
        starts = sorted({period_start(d, period) for d in days})
        for first in starts:
            f = facts(first, period_end(first, period) - timedelta(days=1))
            for dimension, dim_keys in dims.items():
                if not dim_keys:
                    continue
                found = [r for r in (await session.execute(period_figures(f, period, dimension, dim_keys))).all()
                         if r.period_start == first]
                await _upsert(session, [_row(period, dimension, r) for r in found])
                gone = sorted(dim_keys - {r.key for r in found})
                if gone:
                    await session.execute(delete(StatsRollup).where(
                        StatsRollup.period == period, StatsRollup.period_start == first,
                        StatsRollup.dimension == dimension, StatsRollup.key.in_(gone)))
                written += len(found)
    await refresh_volunteers(session)
    await session.flush()
    return {"rows": written}


async def rebuild(session: AsyncSession, *, initial: bool = False) -> int:
    """The nightly check: every rollup row recomputed from the ledger. Returns how many rows differed (missing,
    extra or with other figures), which must be zero; they are put right, logged and audited. `initial`: the
    first build after a bulk load that recorded no refresh jobs (demo data), where every row is expected to be
    missing: written the same way, but not reported as drift."""
    f = facts()
    desired: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for period in PERIODS:
        for dimension in DIMENSIONS:
            for r in (await session.execute(period_figures(f, period, dimension))).all():
                desired[(period, r.period_start, dimension, r.key)] = tuple(
                    Decimal(r.hours) if n == "hours" else int(getattr(r, n)) for n in FIGURES)
    current = {
        (r.period, r.period_start, r.dimension, r.key): (Decimal(r.hours), r.records, r.attended, r.no_shows,
                                                          r.tasks, r.volunteers)
        for r in (await session.execute(select(
            StatsRollup.period, StatsRollup.period_start, StatsRollup.dimension, StatsRollup.key,
            *[getattr(StatsRollup, n) for n in FIGURES]))).all()}
    differ = sorted((k for k in desired.keys() | current.keys() if desired.get(k) != current.get(k)), key=str)
    if differ:
        extra = [k for k in differ if k not in desired]
        for k in extra:
            await session.execute(delete(StatsRollup).where(
                StatsRollup.period == k[0], StatsRollup.period_start == k[1], StatsRollup.dimension == k[2],
                StatsRollup.key == k[3]))
        await _upsert(session, [{"period": k[0], "period_start": k[1], "dimension": k[2], "key": k[3],
                                 **dict(zip(FIGURES, desired[k], strict=True))} for k in differ if k in desired])
        await session.execute(text("ANALYZE stats_periods"))
    await refresh_volunteers(session)
    if initial:
        log.info("stats.rebuild: %s rollup rows built from the ledger", len(differ))
        await session.flush()
        return len(differ)
    if differ:
        log.error("stats.rebuild: %s rollup rows differed from the ledger and were put right", len(differ))
    else:
        log.info("stats.rebuild: every rollup row matches the ledger")
    audit.record(session, None, "stats.rebuild", "rollups", "stats_periods", drift=len(differ))
    await session.flush()
    return len(differ)


# Registered volunteers by registration month and star level (stats_volunteers).

# Volunteers registered in the last few minutes are left to the live count: a registration that committed after
# this snapshot but took its created_at before it would otherwise be in neither part.
SETTLED = timedelta(minutes=5)
_VOLUNTEERS_LOCK = 7_220_011  # pg_advisory_xact_lock key: one recomputation of stats_volunteers at a time


def star_level_of(total_hours: Any) -> Any:
    """A volunteer's star level (0-5) in SQL, by the thresholds of `hours.star_level`."""
    return case(*((total_hours >= t, len(STAR_THRESHOLDS) - i) for i, t in enumerate(reversed(STAR_THRESHOLDS))),
                else_=0)


def registration_month(created_at: Any) -> Any:
    return cast(func.date_trunc("month", func.timezone(get_settings().city_timezone, created_at)), Date)


async def refresh_volunteers(session: AsyncSession) -> int:
    """Recompute stats_volunteers whole: every volunteer registered before now minus SETTLED, by registration
    month and star level (one pass over the volunteers, in the background job). Replaces the rows (serialized by
    an advisory lock, so two jobs never mix their counts); idempotent. Returns how many rows it wrote."""
    await session.execute(select(func.pg_advisory_xact_lock(_VOLUNTEERS_LOCK)))
    through = await session.scalar(select(func.now() - SETTLED))
    month, level = registration_month(Volunteer.created_at), star_level_of(Volunteer.total_hours)
    rows = [{"month": r[0], "level": int(r[1]), "volunteers": int(r[2]), "through": through}
            for r in await session.execute(select(month, cast(level, SmallInteger), func.count())
                                           .where(Volunteer.created_at < through).group_by(month, level))]
    await session.execute(delete(StatsVolunteers))
    if rows:
        await session.execute(insert(StatsVolunteers).values(rows))
    return len(rows)


__all__ = ["DIMENSIONS", "FIGURES", "PERIODS", "facts", "org_closure", "parse_buckets", "period_end",
           "period_figures", "period_start", "rebuild", "refresh", "refresh_volunteers", "registration_month",
           "star_level_of", "touch"]
