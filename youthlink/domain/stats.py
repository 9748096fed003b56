"""Statistics (CityOverview): the city's, an organization's (with its children) or a volunteer's own figures.

A period is a range of calendar days in the city's time zone. Hours count toward the day the service started;
an adjustment counts with the record it corrects; a no-show counts on its task's day.

The city's figures for a calendar month, quarter or year come from the rollups (`youthlink.domain.rollups`),
which workers keep current: the ledger's figures from `stats_periods`, the registered volunteers by star level
and month from `stats_volunteers` plus those registered since it was computed. Any other period, and an
organization's or a volunteer's figures (a small part of the ledger, found by index), are computed from the
ledger directly by the same sums, so both paths agree by construction; `from_ledger=True` forces the direct
computation (the tests and the benchmark compare them).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, bindparam, case, cast, func, literal, literal_column, select, tuple_, union_all
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.config import get_settings
from youthlink.db.models import (
    Organization,
    ServiceRecord,
    Signup,
    StatsRollup,
    StatsVolunteers,
    Task,
    Volunteer,
)
from youthlink.db.models.enums import RecordStatus, TaskStatus
from youthlink.db.models.stats import NIL
from youthlink.domain import policies, rollups
from youthlink.domain.actor import Actor
from youthlink.domain.hours import STAR_THRESHOLDS
from youthlink.domain.inputs import StatsPeriod

PUBLISHED = (TaskStatus.OPEN, TaskStatus.CLOSED, TaskStatus.COMPLETED)
# Per dimension and key: (hours, records, attended, no-shows, tasks); and distinct volunteers.
Sums = dict[str, dict[Any, tuple[Decimal, int, int, int, int]]]
Counts = dict[str, dict[Any, int]]


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


@dataclass(frozen=True)
class Scope:
    """Whose figures: the city (both None), organizations (each with all its children) or one volunteer."""

    organizations: frozenset[uuid.UUID] | None = None
    volunteer_id: uuid.UUID | None = None

    @property
    def is_city(self) -> bool:
        return self.organizations is None and self.volunteer_id is None


@dataclass
class CityStats:
    registered_volunteers: int
    active_volunteers: int
    total_hours: Decimal
    tasks_published: int
    slots_offered: int
    slots_filled: int
    records: int = 0
    no_shows: int = 0
    attended: int = 0
    by_organization: list[Breakdown] = field(default_factory=list)
    by_town: list[Breakdown] = field(default_factory=list)
    by_project: list[Breakdown] = field(default_factory=list)
    by_team: list[Breakdown] = field(default_factory=list)
    monthly: list[Month] = field(default_factory=list)
    star_levels: list[tuple[int, int]] = field(default_factory=list)
    source: str = "ledger"
    scope: Scope = field(default_factory=Scope)  # whose figures, and for which period (outcomes.totals reads them)
    period: StatsPeriod | None = None

    @property
    def fill_rate(self) -> float:
        return round(self.slots_filled / self.slots_offered, 4) if self.slots_offered else 0.0

    @property
    def hours_per_volunteer(self) -> float:
        return round(float(self.total_hours) / self.active_volunteers, 2) if self.active_volunteers else 0.0

    @property
    def no_show_rate(self) -> float:
        """Of the sign-ups that ended (credited with an approved record, or marked no-show), the no-shows."""
        ended = self.no_shows + self.attended
        return round(self.no_shows / ended, 4) if ended else 0.0

    def figures(self) -> dict[str, Any]:
        """Every figure, comparable between the rollups and the ledger (tests, benchmark)."""
        return {
            "registered": self.registered_volunteers, "active": self.active_volunteers,
            "hours": self.total_hours, "tasks": self.tasks_published, "slots": self.slots_offered,
            "filled": self.slots_filled, "records": self.records, "no_shows": self.no_shows,
            "attended": self.attended,
            **{name: sorted((b.key, b.hours, b.volunteers, b.tasks) for b in getattr(self, name))
               for name in ("by_organization", "by_town", "by_project", "by_team")},
            "monthly": [(m.month, m.hours, m.active_volunteers, m.new_volunteers) for m in self.monthly],
            "star_levels": self.star_levels,
        }


def period_bounds(period: StatsPeriod) -> tuple[datetime, datetime]:
    tz = ZoneInfo(get_settings().city_timezone)
    return (datetime.combine(period.from_, time(), tz),
            datetime.combine(period.to + timedelta(days=1), time(), tz))


def calendar_period(period: StatsPeriod) -> str | None:
    """'month', 'quarter' or 'year' when the period is exactly one of them, else None."""
    for kind in rollups.PERIODS:
        start = rollups.period_start(period.from_, kind)
        if start == period.from_ and rollups.period_end(start, kind) - timedelta(days=1) == period.to:
            return kind
    return None


def _months(period: StatsPeriod) -> list[date]:
    months, cursor = [], period.from_.replace(day=1)
    while cursor <= period.to:
        months.append(cursor)
        cursor = (cursor + timedelta(days=32)).replace(day=1)
    return months


async def scope_of(session: AsyncSession, actor: Actor) -> Scope:
    """City admins see the city, organization admins their organizations with all their children, volunteers
    their own figures (policies.stats_audience decides which)."""
    audience = policies.stats_audience(actor)
    if audience == "city":
        return Scope()
    if audience == "organization":
        closure = rollups.org_closure()
        children = (await session.scalars(select(closure.c.organization_id).where(
            closure.c.ancestor_id.in_(sorted(actor.admin_organization_ids))))).all()
        return Scope(organizations=frozenset(children))
    assert actor.volunteer_id is not None
    return Scope(volunteer_id=actor.volunteer_id)


async def city_stats(session: AsyncSession, actor: Actor, period: StatsPeriod, *, from_ledger: bool = False
                     ) -> CityStats:
    """CityOverview for whoever asks (see `scope_of`)."""
    return await overview(session, await scope_of(session, actor), period, from_ledger=from_ledger)


# Sums: hours, records, no-shows and tasks per organization, town, project, team and month, in one statement
# over buckets (the rollup table, or the same buckets computed from the ledger).

_SETS = {15: "organization", 23: "town", 27: "project", 29: "team", 30: "month", 31: "total"}


async def _sums(session: AsyncSession, buckets: Any) -> dict[str, dict[Any, tuple[Decimal, int, int, int, int]]]:
    b = buckets
    month = _month_of(b.c.day)
    task = func.nullif(b.c.task_id, literal(NIL))
    group = func.grouping(b.c.organization_id, b.c.town_id, b.c.project_id, b.c.team_id, month)
    served = case((b.c.records > 0, task))
    rows = await session.execute(
        select(group, b.c.organization_id, b.c.town_id, b.c.project_id, b.c.team_id, month,
               func.coalesce(func.sum(b.c.hours), 0), func.coalesce(func.sum(b.c.records), 0),
               func.coalesce(func.sum(case((b.c.task_id != NIL, b.c.records), else_=0)), 0),
               func.coalesce(func.sum(b.c.no_shows), 0), func.count(func.distinct(served)))
        .group_by(func.grouping_sets(tuple_(b.c.organization_id), tuple_(b.c.town_id), tuple_(b.c.project_id),
                                     tuple_(b.c.team_id), tuple_(month), tuple_()))
    )
    out: dict[str, dict[Any, tuple[Decimal, int, int, int, int]]] = defaultdict(dict)
    for r in rows:
        name = _SETS[r[0]]
        key = {"organization": r[1], "town": r[2], "project": r[3], "team": r[4], "month": _ym(r[5]),
               "total": None}[name]
        out[name][key] = (Decimal(r[6]), int(r[7]), int(r[8]), int(r[9]), int(r[10]))
    return out


def _rollup_rows() -> Any:
    """The period's rollup rows (whole = 1) and the city's rows of its months (whole = 0): two ranges of the
    primary key, one statement built once (parameters: kind, first, last)."""
    t = StatsRollup.__table__
    figures = (t.c.dimension, t.c.key, t.c.period_start, t.c.hours, t.c.records, t.c.attended, t.c.no_shows,
               t.c.tasks, t.c.volunteers)
    return union_all(
        select(literal_column("1"), *figures).where(t.c.period == bindparam("kind"),
                                                    t.c.period_start == bindparam("first")),
        select(literal_column("0"), *figures).where(t.c.period == "month", t.c.period_start >= bindparam("first"),
                                                    t.c.period_start <= bindparam("last"), t.c.dimension == "city"),
    )


_ROLLUP_ROWS = _rollup_rows()


async def _rollup_figures(session: AsyncSession, period: StatsPeriod, kind: str) -> tuple[Sums, Counts]:
    """The period's rollup rows (every key of every dimension) and the city's rows for its months."""
    sums: Sums = defaultdict(dict)
    counts: Counts = defaultdict(dict)
    result = await session.execute(_ROLLUP_ROWS, {"kind": kind, "first": period.from_, "last": period.to})
    for whole, dimension, key, start, hours, records, attended, no_shows, tasks, volunteers in result:
        figures = (hours, records, attended, no_shows, tasks)
        if whole:
            if dimension == "city":
                sums["total"][None] = figures
            else:
                sums[dimension][key] = figures
            counts[dimension][key] = volunteers
        else:
            month = f"{start.year:04d}-{start.month:02d}"
            sums["month"][month] = figures
            counts["month"][month] = volunteers
    return sums, counts


async def _ledger_counts(session: AsyncSession, facts: Any, scope: Scope) -> dict[str, dict[Any, int]]:
    f = facts
    month = _month_of(f.c.day)
    group = func.grouping(f.c.town_id, f.c.project_id, f.c.team_id, month)
    names = {7: "town", 11: "project", 13: "team", 14: "month", 15: "city"}
    out: dict[str, dict[Any, int]] = defaultdict(dict)
    for r in await session.execute(
        select(group, f.c.town_id, f.c.project_id, f.c.team_id, month, func.count(func.distinct(f.c.volunteer_id)))
        .where(f.c.volunteer_id.is_not(None))
        .group_by(func.grouping_sets(tuple_(f.c.town_id), tuple_(f.c.project_id), tuple_(f.c.team_id),
                                     tuple_(month), tuple_()))
    ):
        name = names[r[0]]
        key = {"town": r[1], "project": r[2], "team": r[3], "month": _ym(r[4]), "city": NIL}[name]
        if key is not None:
            out[name][key] = int(r[5])
    closure = rollups.org_closure()
    for ancestor, n in (await session.execute(
        select(closure.c.ancestor_id, func.count(func.distinct(f.c.volunteer_id)))
        .join(closure, closure.c.organization_id == f.c.organization_id)
        .where(f.c.volunteer_id.is_not(None)).group_by(closure.c.ancestor_id)
    )).all():
        if scope.organizations is None or ancestor in scope.organizations:
            out["organization"][ancestor] = int(n)
    return out


async def overview(session: AsyncSession, scope: Scope, period: StatsPeriod, *, from_ledger: bool = False
                   ) -> CityStats:
    start, end = period_bounds(period)
    kind = calendar_period(period)
    use_rollups = scope.is_city and kind is not None and not from_ledger
    if use_rollups:
        assert kind is not None
        sums, counts = await _rollup_figures(session, period, kind)
    else:
        facts = rollups.facts(period.from_, period.to, scope.organizations, scope.volunteer_id)
        sums = await _sums(session, rollups._bucket_rows(facts).subquery("buckets"))
        counts = await _ledger_counts(session, facts, scope)

    # Tasks published in the period, and their slots (the city's: one statement built once).
    if scope.is_city:
        published = (await session.execute(_CITY_TASKS, {"start": start, "end": end})).one()
    else:
        tasks = _published_tasks(start, end)
        if scope.organizations is not None:
            tasks = tasks.where(Task.organization_id.in_(sorted(scope.organizations)))
        if scope.volunteer_id is not None:
            tasks = tasks.where(Task.id.in_(select(Signup.task_id).where(Signup.volunteer_id == scope.volunteer_id)))
        published = (await session.execute(tasks)).one()

    # The population: every volunteer (city), those who served the organizations, or the volunteer: registered
    # by star level, and the new ones by month. The city's for a calendar period: from stats_volunteers, plus
    # those registered since it was computed.
    months = _months(period)
    if use_rollups:
        levels, new = await _population_from_rollup(session, scope, period, months)
    else:
        levels, new = await _population(session, scope, start, end, months)
    stars = {lvl: levels[lvl] - (levels[lvl + 1] if lvl < len(STAR_THRESHOLDS) else 0)
             for lvl in range(len(STAR_THRESHOLDS) + 1)}

    def breakdown(name: str) -> list[Breakdown]:
        rows = [Breakdown(key=k, hours=v[0], volunteers=counts[name].get(k, 0), tasks=v[4])
                for k, v in sums[name].items() if k is not None]
        return sorted(rows, key=lambda b: (-b.hours, str(b.key)))

    total = sums["total"].get(None, (Decimal(0), 0, 0, 0, 0))
    monthly = [Month(m, sums["month"].get(m, (Decimal(0),))[0], counts["month"].get(m, 0), new.get(m, 0))
               for m in (first.strftime("%Y-%m") for first in months)]
    return CityStats(
        registered_volunteers=sum(stars.values()),
        active_volunteers=counts["city"].get(NIL, 0),
        total_hours=total[0],
        tasks_published=int(published[0]),
        slots_offered=int(published[1]),
        slots_filled=int(published[2]),
        records=total[1],
        attended=total[2],
        no_shows=total[3],
        by_organization=breakdown("organization") if use_rollups else _with_children(
            sums["organization"], counts["organization"], await _parents(session), scope),
        by_town=breakdown("town"),
        by_project=breakdown("project"),
        by_team=breakdown("team"),
        monthly=monthly,
        star_levels=[(lvl, stars.get(lvl, 0)) for lvl in range(len(STAR_THRESHOLDS) + 1)],
        source="rollups" if use_rollups else "ledger",
        scope=scope,
        period=period,
    )


def _published_tasks(start: Any, end: Any) -> Any:
    t = Task.__table__
    return select(func.count(), func.coalesce(func.sum(t.c.slots), 0), func.coalesce(func.sum(t.c.filled_slots), 0)
                  ).where(t.c.starts_at >= start, t.c.starts_at < end, t.c.status.in_([s.value for s in PUBLISHED]))


_CITY_TASKS = _published_tasks(bindparam("start"), bindparam("end"))
_VOLUNTEER_MONTHS = select(StatsVolunteers.__table__).where(StatsVolunteers.__table__.c.month < bindparam("end"))


Levels = list[int]  # volunteers at or above each star level (0: all of them)


async def _population(session: AsyncSession, scope: Scope, start: datetime, end: datetime, months: list[date],
                      since: datetime | None = None) -> tuple[Levels, dict[str, int]]:
    """Volunteers registered before `end` (and since `since`, if given) by star level, and those registered in
    each month of the period, in one statement (from the index on registration time and hours)."""
    population = Volunteer.created_at < end
    if since is not None:
        population = population & (Volunteer.created_at >= since)
    if scope.organizations is not None:
        population = population & Volunteer.id.in_(select(ServiceRecord.volunteer_id).where(
            ServiceRecord.organization_id.in_(sorted(scope.organizations)),
            ServiceRecord.status == RecordStatus.APPROVED, ServiceRecord.started_at < end))
    if scope.volunteer_id is not None:
        population = population & (Volunteer.id == scope.volunteer_id)
    tz = ZoneInfo(get_settings().city_timezone)
    bounds = [start] + [datetime.combine(m, time(), tz) for m in months[1:]] + [end]
    bucket = func.width_bucket(Volunteer.created_at, array(bounds))  # 0: before the period; i: its i-th month
    levels = [0] * (len(STAR_THRESHOLDS) + 1)
    new: dict[str, int] = {}
    for row in (await session.execute(select(bucket, func.count(), *[
            func.count().filter(Volunteer.total_hours >= t) for t in STAR_THRESHOLDS]).where(population)
            .group_by(bucket))).all():
        levels = [a + int(b) for a, b in zip(levels, row[1:], strict=True)]
        if row[0] >= 1:
            new[months[row[0] - 1].strftime("%Y-%m")] = int(row[1])
    return levels, new


async def _population_from_rollup(session: AsyncSession, scope: Scope, period: StatsPeriod, months: list[date]
                                  ) -> tuple[Levels, dict[str, int]]:
    """The same figures from stats_volunteers (the volunteers registered before its `through`, by month and
    level: a few hundred rows), plus the volunteers registered since and before the period's end, counted live
    (an index range; none for a period that ended before). Without the table's rows, all of it live."""
    start, end = period_bounds(period)
    end_month = rollups.period_end(months[-1], "month")
    rows = (await session.execute(_VOLUNTEER_MONTHS, {"end": end_month})).all()
    if not rows:
        return await _population(session, scope, start, end, months)
    levels, new = await _population(session, scope, start, end, months, since=rows[0][3])
    first = months[0]
    for month, level, n, _ in rows:
        for k in range(level + 1):
            levels[k] += n
        if month >= first:
            key = month.strftime("%Y-%m")
            new[key] = new.get(key, 0) + n
    return levels, new


def _month_of(day: Any) -> Any:
    """The first day of a date's month, by date arithmetic (no time zone, no text)."""
    return day - cast(func.extract("day", day), Integer) + 1


def _ym(day: date | None) -> str | None:
    return day.strftime("%Y-%m") if day is not None else None


async def _parents(session: AsyncSession) -> dict[uuid.UUID, uuid.UUID | None]:
    return {r.id: r.parent_id for r in (await session.execute(select(Organization.id, Organization.parent_id))).all()}


def _with_children(direct: dict[Any, tuple[Decimal, int, int, int, int]], volunteers: dict[Any, int],
                   parents: dict[uuid.UUID, uuid.UUID | None], scope: Scope) -> list[Breakdown]:
    """Each organization with all its children: hours and tasks summed up the tree, volunteers counted once."""
    hours: dict[uuid.UUID, Decimal] = defaultdict(Decimal)
    tasks: dict[uuid.UUID, int] = defaultdict(int)
    for org, figures in direct.items():
        node: uuid.UUID | None = org
        seen: set[uuid.UUID] = set()
        while node is not None and node not in seen:
            seen.add(node)
            if scope.organizations is None or node in scope.organizations:
                hours[node] += figures[0]
                tasks[node] += figures[4]
            node = parents.get(node)
    rows = [Breakdown(key=org, hours=hours[org], volunteers=volunteers.get(org, 0), tasks=tasks[org]) for org in hours]
    return sorted(rows, key=lambda b: (-b.hours, str(b.key)))


__all__ = ["Breakdown", "CityStats", "Month", "Scope", "calendar_period", "city_stats", "overview", "period_bounds",
           "scope_of"]
