"""Statistics: rollups kept current by the real worker from approvals, adjustments, rejections and no-shows,
compared figure by figure with a direct computation from the ledger; idempotent refresh; the nightly rebuild
and its drift report; the scopes (city, organization with children, a volunteer's own)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update

from tests import factories
from tests.test_hours_ledger import approve, credited_record, volunteer_id_of
from tests.test_loop_end_to_end import eventually
from youthlink.db.models import AuditEntry, Organization, OutboxJob, Project, Signup, StatsRollup
from youthlink.db.models.enums import JobState, Role, SignupStatus
from youthlink.domain import hours, management, rollups, stats
from youthlink.domain.actor import Actor
from youthlink.domain.hours.commands import RejectServiceRecords
from youthlink.domain.inputs import AdjustServiceRecord, CreateTeam, StatsPeriod
from youthlink.domain.matching import waitlist


def calendar_periods(days: set[date]) -> list[StatsPeriod]:
    periods = []
    for kind in rollups.PERIODS:
        for start in sorted({rollups.period_start(d, kind) for d in days}):
            end = rollups.period_end(start, kind) - timedelta(days=1)
            periods.append(StatsPeriod.model_validate({"from": start, "to": end}))
    return periods


async def refreshed(db: Any) -> None:
    """Wait until the worker has run every stats.refresh the services recorded."""
    async def done() -> bool:
        async with db.read() as session:
            states = (await session.scalars(select(OutboxJob.state).where(OutboxJob.name == "stats.refresh"))).all()
        return bool(states) and all(s is JobState.DONE for s in states)

    await eventually(done)


async def snapshot(db: Any) -> list[tuple[Any, ...]]:
    async with db.read() as session:
        return [tuple(r) for r in (await session.execute(select(StatsRollup.__table__).order_by(
            StatsRollup.period, StatsRollup.period_start, StatsRollup.dimension, StatsRollup.key))).all()]


async def a_world(db: Any) -> dict[str, Any]:
    """Org X (under the city committee) with a team; three volunteers; records approved, adjusted, rejected;
    one no-show."""
    admin, _ = await factories.admin(db)
    city, _ = await factories.admin(db, Role.CITY_ADMIN, None)
    org = await factories.organization(db)
    town = await factories.town(db)
    async with db.unit_of_work() as session:
        project = await session.scalar(select(Project).order_by(Project.name).limit(1))
        team = await management.create_team(session, city, CreateTeam(organization_id=org.id, name="统计测试队"))
    assert project is not None
    placed = {"town_id": town.id, "project_id": project.id, "team_id": team.id}
    v1, v1_id, v1_token = await volunteer_id_of(db)
    _, v2_id, _ = await volunteer_id_of(db)
    _, v3_id, _ = await volunteer_id_of(db)
    r1 = await credited_record(db, admin, v1_id, days_ago=3, hours_long=3, **placed)
    r2 = await credited_record(db, admin, v2_id, days_ago=2, hours_long=2, town_id=town.id)
    r3 = await credited_record(db, admin, v3_id, days_ago=2, hours_long=4, **placed)
    r4 = await credited_record(db, admin, v1_id, days_ago=1, hours_long=5)
    # when the organization approves three, corrects one (+0.5 h) and rejects one
    await approve(db, admin, r1.id, r2.id, r4.id)
    async with db.unit_of_work() as session:
        await hours.adjust_record(session, admin, AdjustServiceRecord(record_id=r2.id, hours=Decimal("0.5"),
                                                                      reason="签到漏记半小时"))
        await hours.reject_records(session, admin, RejectServiceRecords(ids=[r3.id], reason="重复登记"))
    # and marks a confirmed volunteer on a started task a no-show
    started = await factories.task(db, admin, starts_in=timedelta(hours=-1), **placed)
    async with db.unit_of_work() as session:
        signup = Signup(task_id=started.id, volunteer_id=v3_id, status=SignupStatus.CONFIRMED,
                        decided_at=datetime.now(UTC))
        session.add(signup)
    async with db.unit_of_work() as session:
        await waitlist.mark_no_show(session, admin, signup.id)
    days = {rollups.city_day(r.started_at) for r in (r1, r2, r3, r4)} | {rollups.city_day(started.starts_at)}
    return {"admin": admin, "city": city, "org": org, "town": town, "team": team, "project": project,
            "v1": v1, "v1_token": v1_token, "days": days, "records": (r1, r2, r3, r4)}


async def overview(db: Any, period: StatsPeriod, scope: stats.Scope | None = None, *, direct: bool = False
                   ) -> stats.CityStats:
    async with db.read() as session:
        return await stats.overview(session, scope or stats.Scope(), period, from_ledger=direct)


async def test_rollups_match_the_ledger_after_approvals_adjustments_rejections_and_no_shows(
    db: Any, worker: Any, clean: None
) -> None:
    # given approvals, an adjustment, a rejection and a no-show (a_world), each recording a stats.refresh
    w = await a_world(db)

    # when the real worker has run the refresh jobs
    await refreshed(db)

    # then every figure of every calendar period touched equals the direct computation from the ledger
    for period in calendar_periods(w["days"]):
        fast, direct = await overview(db, period), await overview(db, period, direct=True)
        assert fast.source == "rollups" and direct.source == "ledger"
        assert fast.figures() == direct.figures(), period
    # and the year's figures are the ones the records make: 3 + 2 + 0.5 + 5 h, the rejected 4 h not counted
    year = max(d.year for d in w["days"])
    figures = await overview(db, StatsPeriod.model_validate({"from": date(year, 1, 1), "to": date(year, 12, 31)}))
    if len({d.year for d in w["days"]}) == 1:
        assert figures.total_hours == Decimal("10.5") and figures.active_volunteers == 2
        assert (figures.records, figures.attended, figures.no_shows) == (3, 3, 1)
        assert figures.no_show_rate == 0.25 and figures.hours_per_volunteer == 5.25
        teams = {b.key: b for b in figures.by_team}
        assert teams[w["team"].id].hours == Decimal("3.0") and teams[w["team"].id].volunteers == 1
        orgs = {b.key: b for b in figures.by_organization}
        assert orgs[w["org"].id].hours == Decimal("10.5") and orgs[w["org"].id].tasks == 3
        async with db.read() as session:
            root = await session.scalar(select(Organization.parent_id).where(Organization.id == w["org"].id))
        assert root is not None and orgs[root].hours == Decimal("10.5") and orgs[root].volunteers == 2


async def test_refresh_twice_changes_nothing_and_the_nightly_rebuild_finds_no_drift(
    db: Any, worker: Any, clean: None
) -> None:
    # given rollups the worker keeps current
    w = await a_world(db)
    await refreshed(db)
    before = await snapshot(db)
    buckets = [(rollups.city_day(r.started_at), r.organization_id, r.task_id or rollups.NIL) for r in w["records"]]

    # when the refresh job runs twice more for the same buckets (a redelivery)
    for _ in range(2):
        async with db.unit_of_work() as session:
            await rollups.refresh(session, buckets)

    # then nothing changed
    assert await snapshot(db) == before

    # when the nightly rebuild runs through the real worker
    from youthlink.workers.app import app

    app.send_task("stats.rebuild")

    async def reported() -> list[Any]:
        async with db.read() as session:
            return list((await session.scalars(select(AuditEntry.data).where(AuditEntry.action == "stats.rebuild")
                                               )).all())

    # then it reports no difference, and the rows are as they were
    assert await eventually(reported) == [{"drift": 0}]
    assert await snapshot(db) == before

    # and a row that drifted is reported and put back
    async with db.unit_of_work() as session:
        await session.execute(update(StatsRollup).where(StatsRollup.dimension == "city")
                              .values(hours=StatsRollup.hours + 1))
        drifted = await session.scalar(select(StatsRollup.period).where(StatsRollup.dimension == "city").limit(1))
    assert drifted is not None
    async with db.unit_of_work() as session:
        assert await rollups.rebuild(session) >= 3  # the city's month, quarter and year
    assert await snapshot(db) == before


async def test_org_admins_see_their_organization_and_volunteers_their_own(
    db: Any, worker: Any, clean: None
) -> None:
    # given the world, and an admin of another organization
    w = await a_world(db)
    await refreshed(db)
    other, _ = await factories.admin(db, org_name="温岭市医疗青年联合会")
    # the period runs to the city's today, the day the volunteers registered (an hour after the city's
    # midnight, the no-show task's day is yesterday)
    days = sorted(w["days"] | {rollups.city_day(datetime.now(UTC))})
    period = StatsPeriod.model_validate({"from": days[0], "to": days[-1]})

    async def seen_by(actor: Actor) -> stats.CityStats:
        async with db.read() as session:
            return await stats.city_stats(session, actor, period)

    # when each asks for the figures
    city, mine, theirs, own = (await seen_by(w["city"]), await seen_by(w["admin"]), await seen_by(other),
                               await seen_by(w["v1"]))

    # then the org admin sees the organization's (all of it here), another org none, the volunteer their own
    assert city.total_hours == mine.total_hours == Decimal("10.5")
    assert mine.active_volunteers == 2 and {b.key for b in mine.by_organization} == {w["org"].id}
    assert theirs.total_hours == 0 and theirs.active_volunteers == 0 and theirs.by_organization == []
    assert own.total_hours == Decimal("8.0") and own.active_volunteers == 1 and own.registered_volunteers == 1
    assert own.no_shows == 0


def test_a_calendar_period_is_recognized() -> None:
    def kind(a: date, b: date) -> str | None:
        return stats.calendar_period(StatsPeriod.model_validate({"from": a, "to": b}))

    assert kind(date(2026, 1, 1), date(2026, 12, 31)) == "year"
    assert kind(date(2026, 4, 1), date(2026, 6, 30)) == "quarter"
    assert kind(date(2026, 2, 1), date(2026, 2, 28)) == "month"
    assert kind(date(2026, 2, 1), date(2026, 3, 31)) is None
    assert kind(date(2026, 2, 2), date(2026, 2, 28)) is None
    assert uuid.UUID(int=0) == rollups.NIL


async def test_registered_volunteers_from_the_histogram_and_those_since_equal_the_direct_count(
    db: Any, clean: None
) -> None:
    # given volunteers who registered over the past year and a half, some with a star level
    from youthlink.db.models import StatsVolunteers, Volunteer

    made = await factories.many_volunteers(db, 8)
    now = datetime.now(UTC)
    ages = [400, 200, 95, 40, 33, 10, 1, 0]
    hours_of = [Decimal(0), Decimal(150), Decimal(700), Decimal(1500), Decimal(0), Decimal(300), Decimal(99),
                Decimal(0)]
    async with db.unit_of_work() as session:
        for (vid, _), days, h in zip(made, ages, hours_of, strict=True):
            await session.execute(update(Volunteer).where(Volunteer.id == vid).values(
                created_at=now - timedelta(days=days, hours=1), total_hours=h))
    # when the histogram is computed (as every stats.refresh does), and two more volunteers register after it
    async with db.unit_of_work() as session:
        assert await rollups.refresh_volunteers(session) > 0
    await factories.many_volunteers(db, 2)

    # then for every calendar period that holds them the city's figures from the rollups (histogram plus
    # those registered since) equal the direct count over the volunteers
    days = {rollups.city_day(now - timedelta(days=d)) for d in ages}
    for period in calendar_periods(days):
        fast, direct = await overview(db, period), await overview(db, period, direct=True)
        assert fast.source == "rollups"
        assert (fast.registered_volunteers, fast.star_levels, fast.monthly) == (
            direct.registered_volunteers, direct.star_levels, direct.monthly), period
    async with db.read() as session:
        assert sum((await session.scalars(select(StatsVolunteers.volunteers))).all()) == 8  # the 2 new ones: live
    this_year = StatsPeriod.model_validate({"from": date(now.year, 1, 1), "to": date(now.year, 12, 31)})
    assert (await overview(db, this_year)).registered_volunteers == 10
