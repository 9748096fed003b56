"""The service-hours ledger against the real database: crediting, the record's facts, deadlines, overlaps,
review (bulk approve / reject, auto-approval), immutability, star levels, reconciliation."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from tests import factories
from youthlink.db.models import (
    AuditEntry,
    Notification,
    Organization,
    ServiceRecord,
    Signup,
    StarLevelAward,
    Task,
    Volunteer,
)
from youthlink.db.models.enums import RecordSource, RecordStatus, Role, SignupStatus
from youthlink.domain import hours
from youthlink.domain.actor import Actor
from youthlink.domain.hours import commands, deadlines
from youthlink.domain.inputs import RecordServiceHours
from youthlink.errors import Conflict

OTHER_ORG = "温岭市医疗青年联合会"


async def a_task(db: Any, admin: Actor, start: datetime, hours_long: float, **overrides: Any) -> Task:
    return await factories.task(db, admin, starts_at=start, ends_at=start + timedelta(hours=hours_long), **overrides)


async def served(db: Any, task: Task, volunteer_id: uuid.UUID, arrived: datetime, left: datetime) -> Signup:
    """A volunteer who was on the task's roster and checked in and out at these times.

    Written straight to the table: sign-up rules are not what these tests are about, and this lets a test
    put one person on two teams' rosters for overlapping times (as paper rosters do)."""
    async with db.unit_of_work() as session:
        signup = Signup(task_id=task.id, volunteer_id=volunteer_id, status=SignupStatus.COMPLETED,
                        decided_at=arrived, checked_in_at=arrived, checked_out_at=left)
        session.add(signup)
    return signup


async def credit(db: Any, signup: Signup) -> ServiceRecord | None:
    async with db.unit_of_work() as session:
        return await hours.credit_from_checkin(session, signup.id)


async def record_of(db: Any, record_id: uuid.UUID) -> ServiceRecord:
    async with db.read() as session:
        row = await session.get(ServiceRecord, record_id)
    assert row is not None
    return row


async def approve(db: Any, admin: Actor, *ids: uuid.UUID) -> list[ServiceRecord]:
    async with db.unit_of_work() as session:
        return await hours.approve_records(session, admin, list(ids))


async def volunteer_id_of(db: Any) -> tuple[Actor, uuid.UUID, str]:
    actor, token = await factories.volunteer(db)
    assert actor.volunteer_id is not None
    return actor, actor.volunteer_id, token


async def credited_record(db: Any, admin: Actor, volunteer_id: uuid.UUID, *, days_ago: int = 1,
                          hours_long: float = 3, **task: Any) -> ServiceRecord:
    start = (datetime.now(UTC) - timedelta(days=days_ago)).replace(minute=0, second=0, microsecond=0)
    made = await a_task(db, admin, start, hours_long, **task)
    signup = await served(db, made, volunteer_id, made.starts_at, made.ends_at)
    record = await credit(db, signup)
    assert record is not None
    return record


def test_the_deadline_counts_chinas_working_days() -> None:
    # given an activity that ended the day before the 2026 National Day holiday (Oct 1-7; Sat Oct 10 is worked)
    ended = date(2026, 9, 30)

    # when the deadline is computed, then the holiday is skipped and the swapped Saturday counts
    assert deadlines.due_on(ended) == date(2026, 10, 20)
    # and in a year without an official schedule yet, Monday to Friday are the working days
    assert deadlines.due_on(date(2030, 3, 1)) == date(2030, 3, 15)
    assert deadlines.working_days_until(date(2026, 10, 16), date(2026, 10, 20)) == 2


async def test_credit_from_check_in_is_the_overlap_with_the_window_with_the_records_facts(
    db: Any, clean: None
) -> None:
    # given a 3-hour task (started yesterday) and a volunteer who came 20 minutes before it and left
    # 47 minutes before its end: travel and waiting outside the window do not count
    admin, _ = await factories.admin(db)
    start = (datetime.now(UTC) - timedelta(days=1)).replace(second=0, microsecond=0)
    task = await a_task(db, admin, start, 3, description="清理沙滩垃圾")
    _, volunteer_id, _ = await volunteer_id_of(db)
    signup = await served(db, task, volunteer_id, start - timedelta(minutes=20), task.ends_at - timedelta(minutes=47))

    # when the crediting job runs, twice (a redelivery)
    first = await credit(db, signup)
    second = await credit(db, signup)

    # then one PENDING record: 2 h 13 min inside the window, rounded down to 2.2 h, with the rules' facts
    assert first is not None and second is None
    async with db.read() as session:
        rows = (await session.scalars(select(ServiceRecord).where(ServiceRecord.signup_id == signup.id))).all()
        org = await session.get(Organization, task.organization_id)
    (record,) = rows
    assert record.hours == Decimal("2.2") and record.status is RecordStatus.PENDING
    assert record.source is RecordSource.CHECK_IN and record.times_recorded
    assert (record.activity_name, record.place, record.content) == ("海洋净滩 · 石塘", "石塘镇金沙滩", "清理沙滩垃圾")
    assert org is not None and record.organization_id == org.id and record.person_in_charge == "管理员"
    assert record.service_date == deadlines.local_date(start)
    assert record.due_on == deadlines.due_on(deadlines.local_date(record.ended_at)) and not record.late
    assert record.started_at == start and record.ended_at == task.ends_at - timedelta(minutes=47)


async def test_hours_round_by_the_configured_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    from youthlink.config import get_settings

    start = datetime(2026, 5, 1, 1, 0, tzinfo=UTC)
    presence = (start, start + timedelta(minutes=10 * 60 + 57))  # 10.95 h
    window = (start, start + timedelta(hours=12))
    assert hours.served_hours(presence, window) == Decimal("10.9")
    monkeypatch.setattr(get_settings(), "hours_rounding", "half_up")
    assert hours.served_hours(presence, window) == Decimal("11.0")


async def test_a_second_organization_cannot_record_the_same_time_twice(db: Any, clean: None) -> None:
    # given a volunteer credited 09:00-12:00 yesterday by the alliance
    alliance, _ = await factories.admin(db)
    medics, _ = await factories.admin(db, org_name=OTHER_ORG)
    _, volunteer_id, _ = await volunteer_id_of(db)
    start = (datetime.now(UTC) - timedelta(days=1)).replace(hour=1, minute=0, second=0, microsecond=0)
    first = await a_task(db, alliance, start, 3)
    await credit(db, await served(db, first, volunteer_id, first.starts_at, first.ends_at))
    # and on the medics' paper roster for 10:00-13:00 the same day
    medics_org = await factories.organization(db, OTHER_ORG)
    second = await a_task(db, medics, start + timedelta(hours=1), 3, organization_id=medics_org.id)
    async with db.unit_of_work() as session:
        roster = Signup(task_id=second.id, volunteer_id=volunteer_id, status=SignupStatus.CONFIRMED)
        session.add(roster)

    # when the medics record paper hours for that time
    with pytest.raises(Conflict) as refused:
        async with db.unit_of_work() as session:
            await hours.record_paper_hours(session, medics, RecordServiceHours(
                signup_id=roster.id, started_at=second.starts_at, ended_at=second.ends_at))

    # then it is refused, naming the organization that already holds the time
    assert refused.value.code == "TIME_OVERLAP" and "社会治理志愿者联盟" in refused.value.message
    # but 12:00-13:00 (after the first record) is fine
    async with db.unit_of_work() as session:
        record = await hours.record_paper_hours(session, medics, RecordServiceHours(
            signup_id=roster.id, started_at=first.ends_at, ended_at=second.ends_at))
    assert record.hours == Decimal("1.0") and record.source is RecordSource.PAPER


async def test_an_overlapping_check_in_is_flagged_and_cannot_be_approved_until_resolved(db: Any, clean: None) -> None:
    # given the same person checked in and out at two teams' tasks covering the same hour
    alliance, _ = await factories.admin(db)
    medics, _ = await factories.admin(db, org_name=OTHER_ORG)
    _, volunteer_id, _ = await volunteer_id_of(db)
    start = (datetime.now(UTC) - timedelta(days=2)).replace(hour=1, minute=0, second=0, microsecond=0)
    first = await a_task(db, alliance, start, 2)
    medics_org = await factories.organization(db, OTHER_ORG)
    second = await a_task(db, medics, start + timedelta(hours=1), 2, organization_id=medics_org.id)
    one = await credit(db, await served(db, first, volunteer_id, first.starts_at, first.ends_at))
    # when the second is credited
    two = await credit(db, await served(db, second, volunteer_id, second.starts_at, second.ends_at))

    # then it is credited (the person did check in and out) but flagged as overlapping the first
    assert one is not None and two is not None
    assert one.overlaps_record_id is None and two.overlaps_record_id == one.id

    # and neither can be approved while both hold the time
    for admin, record in ((alliance, one), (medics, two)):
        with pytest.raises(Conflict) as refused:
            await approve(db, admin, record.id)
        assert refused.value.code == "RECORD_OVERLAPS"

    # when the medics reject theirs, with a reason
    async with db.unit_of_work() as session:
        await hours.reject_records(session, medics, commands.RejectServiceRecords(ids=[two.id], reason="重复记录"))
    # then the alliance's can be approved
    (approved,) = await approve(db, alliance, one.id)
    assert approved.status is RecordStatus.APPROVED
    rejected = await record_of(db, two.id)
    assert rejected.status is RecordStatus.REJECTED and rejected.rejected_reason == "重复记录"


async def test_bulk_approval_and_rejection(db: Any, clean: None) -> None:
    # given three pending records of three volunteers
    admin, _ = await factories.admin(db)
    records = []
    for _ in range(3):
        _, volunteer_id, _ = await volunteer_id_of(db)
        records.append(await credited_record(db, admin, volunteer_id))

    # when two are approved in one call and the third rejected with a reason
    approved = await approve(db, admin, records[0].id, records[1].id)
    async with db.unit_of_work() as session:
        rejected = await hours.reject_records(session, admin, commands.RejectServiceRecords(
            ids=[records[2].id], reason="未实际到场"))

    # then each is decided, approval is recorded (who, when) and the totals follow the ledger
    assert [r.status for r in approved] == [RecordStatus.APPROVED] * 2
    assert all(r.approved_by == admin.account_id and r.approved_at for r in approved)
    assert rejected[0].status is RecordStatus.REJECTED and rejected[0].rejected_by == admin.account_id
    async with db.read() as session:
        totals = dict((await session.execute(
            select(Volunteer.id, Volunteer.total_hours).where(Volunteer.id.in_([r.volunteer_id for r in records]))
        )).all())
    assert [totals[r.volunteer_id] for r in records] == [Decimal("3.0"), Decimal("3.0"), Decimal("0.0")]

    # and approving again changes nothing; an approved record cannot be rejected; a rejected one not approved
    again = await approve(db, admin, records[0].id)
    assert again[0].approved_at == approved[0].approved_at
    with pytest.raises(Conflict) as final:
        async with db.unit_of_work() as session:
            await hours.reject_records(session, admin,
                                       commands.RejectServiceRecords(ids=[records[0].id], reason="改主意"))
    assert final.value.code == "RECORD_FINAL"
    with pytest.raises(Conflict) as no:
        await approve(db, admin, records[2].id)
    assert no.value.code == "RECORD_REJECTED"


async def test_another_organizations_admin_cannot_review(db: Any, clean: None) -> None:
    from youthlink.errors import Forbidden

    admin, _ = await factories.admin(db)
    outsider, _ = await factories.admin(db, org_name=OTHER_ORG)
    _, volunteer_id, _ = await volunteer_id_of(db)
    record = await credited_record(db, admin, volunteer_id)
    with pytest.raises(Forbidden):
        await approve(db, outsider, record.id)
    assert (await record_of(db, record.id)).status is RecordStatus.PENDING


async def test_an_approved_record_is_immutable_in_the_database(db: Any, clean: None) -> None:
    # given an approved record
    admin, _ = await factories.admin(db)
    _, volunteer_id, _ = await volunteer_id_of(db)
    record = await credited_record(db, admin, volunteer_id)
    await approve(db, admin, record.id)

    # when anything (even SQL by hand) tries to change or delete it, then the database refuses
    for statement in (update(ServiceRecord).where(ServiceRecord.id == record.id).values(hours=Decimal("9")),
                      text("DELETE FROM service_records WHERE id = :id").bindparams(id=record.id)):
        with pytest.raises(DBAPIError, match="cannot change"):
            async with db.unit_of_work() as session:
                await session.execute(statement)
    assert (await record_of(db, record.id)).hours == Decimal("3.0")


async def test_auto_approval_after_n_days(db: Any, clean: None) -> None:
    # given an organization that approves automatically after 3 days, and two pending records
    admin, _ = await factories.admin(db)
    org = await factories.organization(db)
    async with db.unit_of_work() as session:
        settings = await hours.set_auto_approval(session, admin, commands.SetAutoApproval(
            organization_id=org.id, days=3))
    assert settings.auto_approve_after_days == 3
    _, volunteer_id, _ = await volunteer_id_of(db)
    old = await credited_record(db, admin, volunteer_id, days_ago=5)
    new = await credited_record(db, admin, volunteer_id, days_ago=1)
    async with db.unit_of_work() as session:  # (time travel: the first was recorded four days ago)
        await session.execute(update(ServiceRecord).where(ServiceRecord.id == old.id)
                              .values(created_at=datetime.now(UTC) - timedelta(days=4)))

    # when the sweep runs, twice
    async with db.unit_of_work() as session:
        first = await hours.auto_approve(session)
    async with db.unit_of_work() as session:
        second = await hours.auto_approve(session)

    # then only the old one is approved, by the system, once
    assert (first, second) == (1, 0)
    done, waiting = await record_of(db, old.id), await record_of(db, new.id)
    assert done.status is RecordStatus.APPROVED and done.auto_approved and done.approved_by is None
    assert waiting.status is RecordStatus.PENDING


async def test_records_near_the_deadline_are_shown_reminded_and_marked_late(db: Any, clean: None) -> None:
    # given three pending records: one past its deadline, one due tomorrow, one with a week left
    admin, _ = await factories.admin(db)
    _, volunteer_id, _ = await volunteer_id_of(db)
    today = deadlines.today()
    late, soon, later = [await credited_record(db, admin, volunteer_id, days_ago=d) for d in (3, 2, 1)]
    async with db.unit_of_work() as session:
        for record, due in ((late, today - timedelta(days=1)), (soon, deadlines.add_working_days(today, 1)),
                            (later, today + timedelta(days=20))):
            await session.execute(update(ServiceRecord).where(ServiceRecord.id == record.id).values(due_on=due))

    # when the organization lists what is due soon
    org = await factories.organization(db)
    async with db.read() as session:
        page = await hours.records_for_review(session, admin, org.id, due_soon=True)
    # then the late and the soon ones show, soonest deadline first
    assert [r.id for r in page.items] == [late.id, soon.id] and page.total_count == 2

    # when the daily job runs twice the same day
    async with db.unit_of_work() as session:
        first = await hours.mark_late_and_remind(session)
    async with db.unit_of_work() as session:
        second = await hours.mark_late_and_remind(session)

    # then the overdue one is marked late once, and the organization's admin is reminded once
    assert first == {"late": 1, "reminders": 1} and second == {"late": 0, "reminders": 0}
    assert (await record_of(db, late.id)).late and not (await record_of(db, soon.id)).late
    async with db.read() as session:
        (reminder,) = (await session.scalars(
            select(Notification).where(Notification.recipient_account_id == admin.account_id))).all()
    assert reminder.kind == "hours.deadline"
    assert reminder.payload == {"organizationId": str(org.id), "pending": 2, "late": 1,
                                "earliestDueOn": (today - timedelta(days=1)).isoformat()}
    # and approving it now keeps it marked late
    (approved,) = await approve(db, admin, late.id)
    assert approved.late


async def test_star_levels_are_reached_in_order_once_and_notified(db: Any, clean: None) -> None:
    # given a volunteer with 16 pending records of 20 h each (320 h), of which 5 are approved: 100 h, one star
    admin, _ = await factories.admin(db)
    _, volunteer_id, _ = await volunteer_id_of(db)
    records = [await credited_record(db, admin, volunteer_id, days_ago=d, hours_long=20) for d in range(30, 14, -1)]
    await approve(db, admin, *[r.id for r in records[:5]])

    async def awards() -> list[int]:
        async with db.read() as session:
            return list((await session.scalars(select(StarLevelAward.level).where(
                StarLevelAward.volunteer_id == volunteer_id).order_by(StarLevelAward.level))).all())

    assert await awards() == [1]
    # when the rest are approved at once (320 h): a jump past 300
    await approve(db, admin, *[r.id for r in records[5:]])
    # and the nightly reconciliation runs (it awards too)
    async with db.unit_of_work() as session:
        await hours.reconcile(session)

    # then level 2 is recorded after level 1, each notified once
    assert await awards() == [1, 2]
    async with db.read() as session:
        notes = (await session.scalars(select(Notification.payload).where(
            Notification.recipient_volunteer_id == volunteer_id, Notification.kind == "star_level.reached")
            .order_by(Notification.created_at))).all()
        total = await session.scalar(select(Volunteer.total_hours).where(Volunteer.id == volunteer_id))
    assert [n["level"] for n in notes] == [1, 2]
    assert total == Decimal("320.0") and hours.star_level(total) == 2


async def test_the_nightly_reconciliation_reports_and_fixes_drift(db: Any, worker: Any, clean: None) -> None:
    # given approved hours, and a total that someone changed by hand
    admin, _ = await factories.admin(db)
    _, volunteer_id, _ = await volunteer_id_of(db)
    record = await credited_record(db, admin, volunteer_id)
    await approve(db, admin, record.id)
    async with db.unit_of_work() as session:
        assert await hours.reconcile(session) == 0  # the ledger and the totals agree
        await session.execute(update(Volunteer).where(Volunteer.id == volunteer_id).values(total_hours=50))

    # when the nightly job runs (through the real worker)
    from youthlink.workers.app import app

    app.send_task("hours.reconcile")

    async def reported() -> Any:
        async with db.read() as session:
            return (await session.scalars(select(AuditEntry.data).where(AuditEntry.action == "hours.reconcile")
                                          .order_by(AuditEntry.id))).all()[1:]

    from tests.test_loop_end_to_end import eventually

    (report,) = await eventually(reported)

    # then it reported the one drifted total and put it back to the ledger's sum
    assert report == {"drift": 1}
    async with db.read() as session:
        assert await session.scalar(select(Volunteer.total_hours).where(Volunteer.id == volunteer_id)) == Decimal("3")
        ledger = await session.scalar(select(func.sum(ServiceRecord.hours)).where(
            ServiceRecord.volunteer_id == volunteer_id, ServiceRecord.status == RecordStatus.APPROVED))
    assert ledger == Decimal("3.0")


async def test_city_statistics_count_star_levels(db: Any, clean: None) -> None:
    from youthlink.domain import stats
    from youthlink.domain.inputs import StatsPeriod

    admin, _ = await factories.admin(db)
    city, _ = await factories.admin(db, Role.CITY_ADMIN, None)
    _, volunteer_id, _ = await volunteer_id_of(db)
    records = [await credited_record(db, admin, volunteer_id, days_ago=d, hours_long=20) for d in range(10, 4, -1)]
    await approve(db, admin, *[r.id for r in records])  # 120 h
    year = datetime.now(UTC).year
    async with db.read() as session:
        figures = await stats.city_stats(session, city, StatsPeriod.model_validate(
            {"from": date(year - 1, 1, 1), "to": date(year, 12, 31)}))
    assert dict(figures.star_levels)[1] == 1 and figures.total_hours == Decimal("120.0")
