"""Notifications: each message is written by its cause, in the cause's transaction, and once.

Sign-up decisions (first come, the matcher, the waitlist, an organization adding someone), invitations,
hours approved and corrected, reminders before a confirmed task and the under-filled warning to the
organization. A rolled-back cause leaves no message; a job or sweep run twice sends each message once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update

from tests import factories
from tests.test_hours_ledger import approve, credited_record, volunteer_id_of
from tests.test_loop_end_to_end import eventually
from tests.test_matching_batch import add_task, add_volunteers, apply, run_batch
from youthlink.db.models import Notification, OutboxJob, Signup
from youthlink.db.models.enums import AssignmentMode, SignupStatus
from youthlink.domain import hours, notifications, signups
from youthlink.domain.inputs import AdjustServiceRecord
from youthlink.domain.matching import recommend, waitlist


async def inbox_of(db: Any, *, volunteer_id: uuid.UUID | None = None, account_id: uuid.UUID | None = None
                   ) -> list[tuple[str, dict[str, Any]]]:
    """(kind, payload) of every notification to the recipient, oldest first."""
    async with db.read() as session:
        query = select(Notification.kind, Notification.payload)
        if volunteer_id is not None:
            query = query.where(Notification.recipient_volunteer_id == volunteer_id)
        else:
            query = query.where(Notification.recipient_account_id == account_id)
        rows = (await session.execute(query.order_by(Notification.created_at, Notification.kind))).all()
    return [(kind, payload) for kind, payload in rows]


async def tell_decisions(db: Any) -> None:
    """Run the `notifications.matching_decided` jobs the batches recorded (as the worker would)."""
    async with db.read() as session:
        jobs = (await session.scalars(select(OutboxJob.args).where(
            OutboxJob.name == "notifications.matching_decided"))).all()
    for args in jobs:
        async with db.unit_of_work() as session:
            await notifications.matching_decided(session, args["run_id"], args["task_ids"])


async def kinds_of(db: Any, volunteer_id: uuid.UUID) -> list[str]:
    return [kind for kind, _ in await inbox_of(db, volunteer_id=volunteer_id)]


async def test_first_come_sign_ups_are_told_confirmed_waitlisted_and_promoted(db: Any, clean: None) -> None:
    # given a first-come task with one slot and two volunteers
    admin, _ = await factories.admin(db)
    task = await factories.task(db, admin, slots=1)
    first, _ = await factories.volunteer(db)
    second, _ = await factories.volunteer(db)
    assert first.volunteer_id is not None and second.volunteer_id is not None

    # when both sign up, and the first one cancels
    async with db.unit_of_work() as session:
        taken = await signups.sign_up(session, first, task.id)
    async with db.unit_of_work() as session:
        waiting = await signups.sign_up(session, second, task.id)
    async with db.unit_of_work() as session:
        await signups.cancel_signup(session, first, taken.id, "临时有事")

    # then the first was told "confirmed", the second "waitlisted" and then "promoted", with ids only
    assert await kinds_of(db, first.volunteer_id) == ["signup.confirmed"]
    assert await kinds_of(db, second.volunteer_id) == ["signup.waitlisted", "signup.promoted"]
    (_, payload), *_ = await inbox_of(db, volunteer_id=second.volunteer_id)
    assert payload == {"signupId": str(waiting.id), "taskId": str(task.id)}


async def test_a_rolled_back_sign_up_leaves_no_notification(db: Any, clean: None) -> None:
    # given a first-come task and a volunteer
    admin, _ = await factories.admin(db)
    task = await factories.task(db, admin, slots=3)
    volunteer, _ = await factories.volunteer(db)
    assert volunteer.volunteer_id is not None

    # when the sign-up's transaction fails after the sign-up was written
    with pytest.raises(RuntimeError):
        async with db.unit_of_work() as session:
            await signups.sign_up(session, volunteer, task.id)
            raise RuntimeError("the request failed later")

    # then its notification went with it
    assert await kinds_of(db, volunteer.volunteer_id) == []


async def test_an_organization_adding_a_volunteer_tells_them(db: Any, clean: None) -> None:
    # given a task and a volunteer who did not sign up
    admin, _ = await factories.admin(db)
    task = await factories.task(db, admin, slots=3)
    volunteer, _ = await factories.volunteer(db)
    assert volunteer.volunteer_id is not None

    # when the organization adds them
    async with db.unit_of_work() as session:
        signup = await signups.add_participant(session, admin, task.id, volunteer.volunteer_id)

    # then they are told they are confirmed
    assert await inbox_of(db, volunteer_id=volunteer.volunteer_id) == [
        ("signup.confirmed", {"signupId": str(signup.id), "taskId": str(task.id)})]


async def test_the_matching_batch_tells_every_applicant_its_decision_once(db: Any, clean: None) -> None:
    # given a matched task with one slot, and three applicants: one too young (rejected), two adults
    task = await add_task(db, slots=1, min_age=18)
    adults = await add_volunteers(db, 2)
    (child,) = await add_volunteers(db, 1, birth=datetime.now(UTC).date().replace(year=datetime.now(UTC).year - 12),
                                    consent=True)
    await apply(db, task, [*adults, child])

    # when the batch decides, and runs again, and the job it recorded runs twice
    await run_batch(db)
    await run_batch(db)
    async with db.read() as session:
        (args,) = (await session.scalars(select(OutboxJob.args).where(
            OutboxJob.name == "notifications.matching_decided"))).all()
    assert args["task_ids"] == [str(task.id)]
    for _ in range(2):
        async with db.unit_of_work() as session:
            await notifications.matching_decided(session, args["run_id"], args["task_ids"])

    # then each applicant got exactly one message: its decision
    async with db.read() as session:
        status = dict((await session.execute(select(Signup.volunteer_id, Signup.status)
                                              .where(Signup.task_id == task.id))).all())
    assert set(status.values()) == {SignupStatus.CONFIRMED, SignupStatus.WAITLISTED, SignupStatus.REJECTED}
    for volunteer_id, decided in status.items():
        assert await kinds_of(db, volunteer_id) == [f"signup.{decided.value.lower()}"]


async def test_the_matched_waitlist_promotion_tells_the_volunteer_once(db: Any, clean: None) -> None:
    # given a decided matched task with one slot: one confirmed, one waitlisted
    task = await add_task(db, slots=1, starts_in=timedelta(days=3))
    volunteers = await add_volunteers(db, 2)
    await apply(db, task, volunteers)
    await run_batch(db)
    await tell_decisions(db)
    async with db.read() as session:
        rows = dict((await session.execute(select(Signup.status, Signup.id).where(Signup.task_id == task.id))).all())
        confirmed = await session.get(Signup, rows[SignupStatus.CONFIRMED])
    assert confirmed is not None
    async with db.unit_of_work() as session:
        await session.execute(update(Signup).where(Signup.id == confirmed.id).values(status=SignupStatus.CANCELLED))
        await signups.release_slot(session, task.id)

    # when the promotion job runs twice
    for _ in range(2):
        async with db.unit_of_work() as session:
            await waitlist.promote(session, task.id)

    # then the waitlisted volunteer heard "waitlisted", then "promoted", once
    async with db.read() as session:
        promoted = await session.get(Signup, rows[SignupStatus.WAITLISTED])
    assert promoted is not None and promoted.status is SignupStatus.CONFIRMED
    assert await kinds_of(db, promoted.volunteer_id) == ["signup.waitlisted", "signup.promoted"]


async def test_an_invitation_is_sent_once_however_often_one_invites(db: Any, clean: None) -> None:
    # given an open first-come task and an eligible volunteer
    admin, _ = await factories.admin(db)
    task = await factories.task(db, admin, slots=3)
    volunteer, _ = await factories.volunteer(db)
    assert volunteer.volunteer_id is not None

    # when the organization invites them twice
    for _ in range(2):
        async with db.unit_of_work() as session:
            result = await recommend.invite_volunteers(session, admin, task.id, [volunteer.volunteer_id])
        assert result.invited == [volunteer.volunteer_id]

    # then one invitation reached them
    assert await inbox_of(db, volunteer_id=volunteer.volunteer_id) == [("task.invited", {"taskId": str(task.id)})]


async def test_hours_approved_and_corrected_are_told_to_the_volunteer(db: Any, clean: None) -> None:
    # given a credited record
    admin, _ = await factories.admin(db)
    _, volunteer_id, _ = await volunteer_id_of(db)
    record = await credited_record(db, admin, volunteer_id)

    # when it is approved (twice: the second changes nothing) and then corrected
    await approve(db, admin, record.id)
    await approve(db, admin, record.id)
    async with db.unit_of_work() as session:
        adjustment = await hours.adjust_record(session, admin, AdjustServiceRecord(
            record_id=record.id, hours=Decimal("0.5"), reason="核对签到表"))

    # then the volunteer heard both, once each
    assert await inbox_of(db, volunteer_id=volunteer_id) == [
        ("hours.approved", {"recordId": str(record.id), "hours": "3.0"}),
        ("hours.corrected", {"recordId": str(record.id), "adjustmentId": str(adjustment.id), "hours": "0.5"}),
    ]


def test_each_reminder_has_its_own_window() -> None:
    assert notifications.reminder_window(24, [24, 2]) == 2
    assert notifications.reminder_window(2, [24, 2]) == 0
    assert notifications.reminder_window(6, [24, 6, 2]) == 2


async def test_reminders_and_the_underfilled_warning_are_sent_once_each(db: Any, clean: None) -> None:
    # given a first-come task with three slots starting in 20 hours, one confirmed volunteer, and
    # a second task starting in 1 hour (confirmed late: only the 2-hour reminder is still useful)
    admin, _ = await factories.admin(db)
    soon = await factories.task(db, admin, slots=3, starts_in=timedelta(hours=20))
    sooner = await factories.task(db, admin, slots=1, starts_in=timedelta(hours=1), hours=1)
    volunteer, _ = await factories.volunteer(db)
    other, _ = await factories.volunteer(db)
    assert volunteer.volunteer_id is not None and other.volunteer_id is not None
    async with db.unit_of_work() as session:
        mine = await signups.sign_up(session, volunteer, soon.id)
    async with db.unit_of_work() as session:
        late = await signups.sign_up(session, other, sooner.id)

    # when the sweep runs twice now, and once more 19 hours later
    now = datetime.now(UTC)
    results = []
    for at in (now, now, now + timedelta(hours=19)):
        async with db.unit_of_work() as session:
            results.append(await notifications.send_due_reminders(session, at))

    # then the 1-day reminder, the under-filled warning and the 2-hour reminders were each sent once
    assert results == [{"reminders": 2, "underfilled": 1}, {"reminders": 0, "underfilled": 0},
                       {"reminders": 1, "underfilled": 0}]
    reminders = [p for k, p in await inbox_of(db, volunteer_id=volunteer.volunteer_id) if k == "task.reminder"]
    assert [(p["signupId"], p["hoursBefore"]) for p in reminders] == [(str(mine.id), 24.0), (str(mine.id), 2.0)]
    late_ones = [p for k, p in await inbox_of(db, volunteer_id=other.volunteer_id) if k == "task.reminder"]
    assert [(p["signupId"], p["hoursBefore"]) for p in late_ones] == [(str(late.id), 2.0)]
    # (the full task is not under-filled; the other one is, and its organization's admin was warned)
    assert await inbox_of(db, account_id=admin.account_id) == [
        ("task.underfilled", {"taskId": str(soon.id), "slots": 3, "filled": 1})]


async def test_the_reminder_job_runs_on_the_real_worker(db: Any, worker: Any, clean: None) -> None:
    # given a confirmed volunteer on a task starting in 2 hours minus a minute
    admin, _ = await factories.admin(db)
    task = await factories.task(db, admin, slots=1, starts_in=timedelta(hours=2) - timedelta(minutes=1),
                                mode=AssignmentMode.FIRST_COME)
    volunteer, _ = await factories.volunteer(db)
    assert volunteer.volunteer_id is not None
    async with db.unit_of_work() as session:
        await signups.sign_up(session, volunteer, task.id)

    # when beat's job is sent twice
    from youthlink.workers.app import app

    app.send_task("notifications.remind")
    app.send_task("notifications.remind")

    # then the 2-hour reminder arrives, once
    async def reminded() -> Any:
        found = [k for k in await kinds_of(db, volunteer.volunteer_id) if k == "task.reminder"]  # type: ignore[arg-type]
        return found or None

    assert await eventually(reminded) == ["task.reminder"]
