"""A task changed or cancelled after volunteers signed up (issue 7): `updateTask` and `cancelTask`.

A new time or place is told to every volunteer still in play (`task.changed`), a cancellation to every
volunteer whose sign-up it ends (`task.cancelled`), in the change's own transaction, once each; a refused
change stores and tells nothing; reminders follow a moved start.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from tests import factories
from tests.conftest import GraphQL
from tests.test_loop_end_to_end import eventually
from tests.test_notification_delivery import Receivers
from tests.test_notification_delivery import receivers as receivers  # the fixture: a real HTTP receiver
from tests.test_notifications import inbox_of, kinds_of
from youthlink.config import get_settings
from youthlink.db.models import AuditEntry, Notification, NotificationDelivery, NotificationPreference, Signup, Task
from youthlink.db.models.enums import AssignmentMode, Role, SignupStatus, TaskStatus
from youthlink.domain import delivery, notifications, signups, tasks
from youthlink.domain.actor import Actor
from youthlink.domain.inputs import CancelTask, UpdateTask
from youthlink.errors import Conflict
from youthlink.graphql.ids import encode_id

UPDATE = """mutation($i: UpdateTaskInput!) { updateTask(input: $i) {
  task { id title startsAt endsAt slots filledSlots status signupDeadline location { address lat lng } }
  errors { field message code } } }"""
CANCEL = """mutation($i: CancelTaskInput!) { cancelTask(input: $i) {
  task { id status filledSlots } errors { field message code } } }"""
INBOX = "{ notifications { unreadCount items { kind payload } } }"
SIGN_UP = "mutation($t: ID!) { signUp(input: {taskId: $t}) { signup { id status } errors { field code } } }"


async def signed_up(db: Any, task: Task, count: int) -> list[tuple[Actor, str, Signup]]:
    """`count` volunteers signed up for the task, in order (first come: confirmed, then waitlisted)."""
    found = []
    for _ in range(count):
        volunteer, token = await factories.volunteer(db)
        async with db.unit_of_work() as session:
            signup = await signups.sign_up(session, volunteer, task.id)
        found.append((volunteer, token, signup))
    return found


async def inbox(gql: GraphQL, token: str, kind: str) -> list[dict[str, Any]]:
    """The payloads of the viewer's notifications of that kind, read through GraphQL."""
    items = (await gql(INBOX, token=token))["data"]["notifications"]["items"]
    return [item["payload"] for item in items if item["kind"] == kind]


async def stored(db: Any, task_id: uuid.UUID) -> Task:
    async with db.read() as session:
        task = await session.get(Task, task_id)
    assert task is not None
    return task


async def statuses(db: Any, task_id: uuid.UUID) -> dict[uuid.UUID, SignupStatus]:
    async with db.read() as session:
        return dict((await session.execute(select(Signup.id, Signup.status).where(Signup.task_id == task_id))).all())


async def count_of(db: Any, kind: str) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Notification)
                                        .where(Notification.kind == kind)) or 0)


# Changing a task

async def test_moving_a_task_tells_its_confirmed_and_waitlisted_volunteers_once_each_and_by_webhook(
    gql: GraphQL, db: Any, clean: None, receivers: Any
) -> None:
    # given a one-slot task starting in 20 hours, a confirmed volunteer (who chose webhooks, to a real
    # receiver) and a waitlisted one
    found: Receivers = receivers()
    admin, admin_token = await factories.admin(db)
    task = await factories.task(db, admin, slots=1, starts_in=timedelta(hours=20))
    (first, first_token, confirmed), (_, second_token, waiting) = await signed_up(db, task, 2)
    assert (confirmed.status, waiting.status) == (SignupStatus.CONFIRMED, SignupStatus.WAITLISTED)
    async with db.unit_of_work() as session:
        session.add(NotificationPreference(account_id=first.account_id, channels=["webhook"],
                                           webhook_url=found.webhook_url))

    # when the organization's admin moves it two hours later and to another beach
    starts = task.starts_at + timedelta(hours=2)
    moved = (await gql(UPDATE, {"i": {
        "taskId": encode_id("Task", task.id), "startsAt": starts.isoformat(),
        "endsAt": (starts + timedelta(hours=3)).isoformat(),
        "location": {"address": "石塘镇里箬沙滩", "lat": 28.25, "lng": 121.62}}}, token=admin_token))["data"]

    # then the task is changed, and each volunteer has exactly one task.changed with the old and new figures
    assert moved["updateTask"]["errors"] == []
    assert moved["updateTask"]["task"]["location"] == {"address": "石塘镇里箬沙滩", "lat": 28.25, "lng": 121.62}
    for token, signup in ((first_token, confirmed), (second_token, waiting)):
        (payload,) = await inbox(gql, token, "task.changed")
        assert payload == {
            "taskId": str(task.id), "signupId": str(signup.id),
            "oldStartsAt": task.starts_at.isoformat(), "newStartsAt": starts.isoformat(),
            "oldEndsAt": task.ends_at.isoformat(), "newEndsAt": (starts + timedelta(hours=3)).isoformat(),
            "oldAddress": "石塘镇金沙滩", "newAddress": "石塘镇里箬沙滩"}
    # and the webhook reached the receiver once, quiet hours or not (the task starts within 24 hours)
    hooks = await eventually(lambda: _ready(found.webhooks()))
    await asyncio.sleep(1.0)
    (hook,) = found.webhooks()
    body = json.loads(hook["body"])
    assert body["kind"] == "task.changed" and "里箬沙滩" in body["text"] and "金沙滩" in body["text"]
    assert len(hooks) == 1 and body["payload"]["signupId"] == str(confirmed.id)


async def _ready(value: list[Any]) -> list[Any]:
    return value


async def test_a_title_only_change_tells_nobody(gql: GraphQL, db: Any, clean: None) -> None:
    # given a task with a confirmed volunteer
    admin, admin_token = await factories.admin(db)
    task = await factories.task(db, admin, slots=3)
    ((volunteer, _, _),) = await signed_up(db, task, 1)
    assert volunteer.volunteer_id is not None

    # when the admin renames it, and sends its current time and place along (a form sends everything)
    changed = (await gql(UPDATE, {"i": {
        "taskId": encode_id("Task", task.id), "title": "海洋净滩 · 石塘（第二期）", "description": "带手套",
        "startsAt": task.starts_at.isoformat(), "endsAt": task.ends_at.isoformat(),
        "location": {"address": task.address, "lat": task.lat, "lng": task.lng}}}, token=admin_token))["data"]

    # then the task has its new title, and the volunteer was not told anything new
    assert changed["updateTask"]["errors"] == []
    assert changed["updateTask"]["task"]["title"] == "海洋净滩 · 石塘（第二期）"
    assert await kinds_of(db, volunteer.volunteer_id) == ["signup.confirmed"]


async def test_more_slots_go_to_the_waitlist_and_fewer_than_the_confirmed_are_refused(
    gql: GraphQL, db: Any, clean: None
) -> None:
    # given a one-slot task with one confirmed and two waitlisted volunteers
    admin, admin_token = await factories.admin(db)
    task = await factories.task(db, admin, slots=1)
    (_, _, first), (_, _, second), (_, _, third) = await signed_up(db, task, 3)
    task_id = encode_id("Task", task.id)

    # when the admin raises the slots to 2, then tries 1
    raised = (await gql(UPDATE, {"i": {"taskId": task_id, "slots": 2}}, token=admin_token))["data"]["updateTask"]
    lowered = (await gql(UPDATE, {"i": {"taskId": task_id, "slots": 1}}, token=admin_token))["data"]["updateTask"]

    # then the longest-waiting volunteer took the new slot, and going below the two confirmed is refused
    assert raised["errors"] == [] and raised["task"]["filledSlots"] == 2
    assert await statuses(db, task.id) == {first.id: SignupStatus.CONFIRMED, second.id: SignupStatus.CONFIRMED,
                                           third.id: SignupStatus.WAITLISTED}
    assert lowered["task"] is None and [(e["code"], e["field"]) for e in lowered["errors"]] == [
        ("SLOTS_BELOW_FILLED", "slots")]
    assert (await stored(db, task.id)).slots == 2


async def test_a_refused_change_stores_nothing_and_tells_nobody(gql: GraphQL, db: Any, clean: None) -> None:
    # given a two-slot task with two confirmed volunteers
    admin, admin_token = await factories.admin(db)
    task = await factories.task(db, admin, slots=2)
    await signed_up(db, task, 2)
    task_id = encode_id("Task", task.id)
    soon = datetime.now(UTC) + timedelta(days=1)

    # when the admin sends changes that break a rule
    tries = {
        "INVALID_TIME_RANGE": {"endsAt": (task.starts_at - timedelta(hours=1)).isoformat()},
        "START_IN_PAST": {"startsAt": (datetime.now(UTC) - timedelta(hours=1)).isoformat()},
        "INVALID_DEADLINE": {"startsAt": soon.isoformat(), "endsAt": (soon + timedelta(hours=2)).isoformat(),
                             "signupDeadline": (soon + timedelta(hours=1)).isoformat(),
                             "location": {"address": "新地点", "lat": 28.3, "lng": 121.5}},
        "SLOTS_BELOW_FILLED": {"slots": 1, "title": "新标题"},
        "NOTHING_TO_UPDATE": {},
        "INVALID_INPUT": {"title": None},
    }
    answers = {code: (await gql(UPDATE, {"i": {"taskId": task_id, **change}}, token=admin_token)
                      )["data"]["updateTask"] for code, change in tries.items()}
    # and a change that passes every rule fails later in its transaction
    with pytest.raises(RuntimeError):
        async with db.unit_of_work() as session:
            await tasks.update_task(session, admin, UpdateTask(task_id=task.id, starts_at=soon,
                                                               ends_at=soon + timedelta(hours=2)))
            raise RuntimeError("the request failed later")

    # then each was refused with its code, and the task and the inboxes are as they were
    for code, answer in answers.items():
        assert answer["task"] is None and answer["errors"][0]["code"] == code, (code, answer)
    after = await stored(db, task.id)
    assert (after.title, after.starts_at, after.ends_at, after.slots, after.address, after.signup_deadline) == (
        task.title, task.starts_at, task.ends_at, 2, task.address, None)
    assert await count_of(db, "task.changed") == 0
    async with db.read() as session:
        assert await session.scalar(select(AuditEntry.id).where(AuditEntry.action == "task.update")) is None


async def test_a_volunteer_or_another_organizations_admin_is_refused(gql: GraphQL, db: Any, clean: None) -> None:
    # given a task of the alliance with a confirmed volunteer, and an admin of another organization
    admin, _ = await factories.admin(db)
    _, other_token = await factories.admin(db, Role.ORG_ADMIN, "温岭市医疗青年联合会")
    task = await factories.task(db, admin, slots=2)
    ((_, volunteer_token, signup),) = await signed_up(db, task, 1)
    task_id = encode_id("Task", task.id)

    # when each of them tries to move and to cancel it
    answers = []
    for token in (volunteer_token, other_token):
        answers.append((await gql(UPDATE, {"i": {"taskId": task_id, "startsAt": (
            task.starts_at + timedelta(hours=1)).isoformat(), "endsAt": (task.ends_at + timedelta(hours=1)
                                                                        ).isoformat()}}, token=token))["data"])
        answers.append((await gql(CANCEL, {"i": {"taskId": task_id, "reason": "天气原因"}}, token=token))["data"])

    # then every try is FORBIDDEN, and nothing changed or was told
    for answer in answers:
        (payload,) = answer.values()
        assert payload["task"] is None and [e["code"] for e in payload["errors"]] == ["FORBIDDEN"]
    after = await stored(db, task.id)
    assert (after.status, after.starts_at, after.filled_slots) == (TaskStatus.OPEN, task.starts_at, 1)
    assert await statuses(db, task.id) == {signup.id: SignupStatus.CONFIRMED}
    assert await count_of(db, "task.changed") == await count_of(db, "task.cancelled") == 0


async def test_a_team_leader_changes_a_task_posted_for_their_team_as_they_posted_it(db: Any, clean: None) -> None:
    # given a team of the alliance, its leader, and a task the leader posted for the team
    from youthlink.domain import accounts, management
    from youthlink.domain.inputs import CreateTeam

    city, _ = await factories.admin(db, Role.CITY_ADMIN, None)
    org = await factories.organization(db)
    leader, _ = await factories.volunteer(db)
    assert leader.volunteer_id is not None and leader.account_id is not None
    async with db.unit_of_work() as session:
        team = await management.create_team(session, city, CreateTeam(organization_id=org.id, name="净滩先锋队"))
        await management.add_team_member(session, city, team.id, leader.volunteer_id)
        await management.appoint_team_leader(session, city, team.id, leader.volunteer_id)
    async with db.read() as session:
        leader = await accounts.load_actor(session, leader.account_id)
    task = await factories.task(db, leader, team_id=team.id)

    # when the leader renames it and then cancels it
    async with db.unit_of_work() as session:
        await tasks.update_task(session, leader, UpdateTask(task_id=task.id, title="净滩 · 改期"))
    async with db.unit_of_work() as session:
        cancelled = await tasks.cancel_task(session, leader, CancelTask(task_id=task.id, reason="台风预警"))

    # then both went through (the rule of createTask: the team's leader runs the team's tasks)
    assert cancelled.status is TaskStatus.CANCELLED and (await stored(db, task.id)).title == "净滩 · 改期"


# Cancelling a task

async def test_cancelling_a_task_cancels_its_sign_ups_and_tells_each_volunteer_once(
    gql: GraphQL, db: Any, clean: None
) -> None:
    # given a two-slot task with two confirmed volunteers and a waitlisted one
    admin, admin_token = await factories.admin(db)
    task = await factories.task(db, admin, slots=2)
    volunteers = await signed_up(db, task, 3)
    task_id = encode_id("Task", task.id)

    # when the admin cancels it without a reason, then with one, then again
    unreasoned = (await gql(CANCEL, {"i": {"taskId": task_id, "reason": " "}}, token=admin_token)
                  )["data"]["cancelTask"]
    cancelled = (await gql(CANCEL, {"i": {"taskId": task_id, "reason": "台风预警，活动取消"}}, token=admin_token)
                 )["data"]["cancelTask"]
    again = (await gql(CANCEL, {"i": {"taskId": task_id, "reason": "台风预警，活动取消"}}, token=admin_token)
             )["data"]["cancelTask"]

    # then a reason is required; the task is cancelled with no slot held and every sign-up cancelled
    assert unreasoned["task"] is None and [e["field"] for e in unreasoned["errors"]] == ["reason"]
    assert cancelled["errors"] == [] and cancelled["task"]["status"] == "CANCELLED"
    assert cancelled["task"]["filledSlots"] == 0 and (await stored(db, task.id)).filled_slots == 0
    assert set((await statuses(db, task.id)).values()) == {SignupStatus.CANCELLED}
    assert [e["code"] for e in again["errors"]] == ["ALREADY_CANCELLED"]
    # and each volunteer has exactly one task.cancelled, with the reason
    for _, token, signup in volunteers:
        assert await inbox(gql, token, "task.cancelled") == [
            {"taskId": str(task.id), "signupId": str(signup.id), "reason": "台风预警，活动取消"}]
    # and nobody can sign up for it, or change it, any more
    _, late_token = await factories.volunteer(db)
    refused = (await gql(SIGN_UP, {"t": task_id}, token=late_token))["data"]["signUp"]
    assert refused["signup"] is None and [e["code"] for e in refused["errors"]] == ["TASK_NOT_OPEN"]
    changed = (await gql(UPDATE, {"i": {"taskId": task_id, "title": "复活"}}, token=admin_token))["data"]
    assert [e["code"] for e in changed["updateTask"]["errors"]] == ["TASK_CANCELLED"]


async def test_a_task_someone_attended_or_that_is_over_is_not_cancelled(db: Any, clean: None) -> None:
    # given a task that already happened (with a participant) and a task under way with a checked-in volunteer
    admin, _ = await factories.admin(db)
    past = await factories.task(db, admin, starts_in=-timedelta(days=1))
    now_on = await factories.task(db, admin, starts_in=timedelta(minutes=5), hours=1)
    ((volunteer, _, signup),) = await signed_up(db, now_on, 1)
    from youthlink.domain.inputs import CheckIn

    async with db.unit_of_work() as session:
        await signups.check_in(session, volunteer, CheckIn(signup_id=signup.id, code=tasks.current_checkin_code(
            now_on), location={"lat": 28.26, "lng": 121.61}))

    # when the admin tries to cancel each, and to move the one under way
    codes = []
    for task_id in (past.id, now_on.id):
        with pytest.raises(Conflict) as refused:
            async with db.unit_of_work() as session:
                await tasks.cancel_task(session, admin, CancelTask(task_id=task_id, reason="不办了"))
        codes.append(refused.value.code)
    later = now_on.starts_at + timedelta(days=1)
    with pytest.raises(Conflict) as moving:
        async with db.unit_of_work() as session:
            await tasks.update_task(session, admin, UpdateTask(task_id=now_on.id, starts_at=later,
                                                               ends_at=later + timedelta(hours=1)))

    # then they are refused: over, attended, started
    assert codes == ["TASK_ENDED", "TASK_ATTENDED"] and moving.value.code == "TASK_STARTED"
    assert (await statuses(db, now_on.id)) == {signup.id: SignupStatus.CHECKED_IN}


async def test_sign_ups_racing_a_cancellation_never_land_on_the_cancelled_task(
    gql: GraphQL, db: Any, clean: None
) -> None:
    # given a 5-slot task with 3 confirmed volunteers, and 20 more about to sign up
    admin, admin_token = await factories.admin(db)
    task = await factories.task(db, admin, slots=5)
    await signed_up(db, task, 3)
    racing = await factories.many_volunteers(db, 20)
    task_id = encode_id("Task", task.id)

    # when they sign up while the admin cancels the task
    answers = await asyncio.gather(
        *[gql(SIGN_UP, {"t": task_id}, token=token) for _, token in racing[:10]],
        gql(CANCEL, {"i": {"taskId": task_id, "reason": "场地临时关闭"}}, token=admin_token),
        *[gql(SIGN_UP, {"t": task_id}, token=token) for _, token in racing[10:]],
    )

    # then the cancellation went through, every sign-up is cancelled (those after it were refused), no slot
    # is held, and every volunteer whose sign-up it cancelled was told
    assert answers[10]["data"]["cancelTask"]["errors"] == []
    refused = [a["data"]["signUp"]["errors"] for a in answers[:10] + answers[11:] if a["data"]["signUp"]["errors"]]
    assert all([e["code"] for e in errors] == ["TASK_NOT_OPEN"] for errors in refused)
    after = await statuses(db, task.id)
    assert set(after.values()) == {SignupStatus.CANCELLED} and len(after) == 3 + 20 - len(refused)
    assert (await stored(db, task.id)).filled_slots == 0
    assert await count_of(db, "task.cancelled") == len(after)


# Quiet hours, templates, reminders

def test_a_change_or_cancellation_is_urgent_when_the_task_is_within_a_day() -> None:
    now = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    for kind in ("task.changed", "task.cancelled"):
        assert delivery.is_urgent(kind, now + timedelta(hours=23), now)
        assert delivery.is_urgent(kind, now - timedelta(hours=1), now)
        assert not delivery.is_urgent(kind, now + timedelta(hours=25), now)
        assert not delivery.is_urgent(kind, None, now)
    assert delivery.is_urgent("task.reminder", None, now) and not delivery.is_urgent("hours.approved", None, now)


async def test_quiet_hours_hold_a_far_tasks_change_but_not_a_near_ones(
    db: Any, clean: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given quiet hours all day but a minute, and a volunteer with email confirmed for a task in 3 days
    # and one for a task tomorrow
    monkeypatch.setattr(get_settings(), "notification_quiet_start", "00:00")
    monkeypatch.setattr(get_settings(), "notification_quiet_end", "23:59")
    admin, _ = await factories.admin(db)
    far = await factories.task(db, admin, starts_in=timedelta(days=3))
    near = await factories.task(db, admin, starts_in=timedelta(hours=30))
    held: dict[str, Any] = {}
    for name, task in (("far", far), ("near", near)):
        ((volunteer, _, _),) = await signed_up(db, task, 1)
        async with db.unit_of_work() as session:
            session.add(NotificationPreference(account_id=volunteer.account_id, channels=["email"],
                                               email="v@example.org"))
        # when each task is moved 8 hours earlier (the near one to within a day)
        async with db.unit_of_work() as session:
            await tasks.update_task(session, admin, UpdateTask(
                task_id=task.id, starts_at=task.starts_at - timedelta(hours=8),
                ends_at=task.ends_at - timedelta(hours=8)))
        async with db.read() as session:
            held[name] = (await session.execute(
                select(NotificationDelivery.not_before).join(
                    Notification, Notification.id == NotificationDelivery.notification_id)
                .where(Notification.kind == "task.changed",
                       Notification.recipient_volunteer_id == volunteer.volunteer_id))).scalar_one()

    # then the far task's change waits for the end of the quiet hours (when it is quiet now), the near one's not
    if delivery.quiet_until(datetime.now(UTC), get_settings()) is not None:
        assert held["far"] is not None
    assert held["near"] is None


def test_the_change_and_cancellation_texts_in_chinese_and_english() -> None:
    context = {"task_title": "海洋净滩", "starts_at": "2026-12-01 09:00", "ends_at": "2026-12-01 12:00",
               "address": "里箬沙滩", "old_starts_at": "2026-12-01 07:00", "oldAddress": "金沙滩",
               "reason": "台风预警"}
    assert delivery.render("task.changed", context) == (
        "任务变更：海洋净滩",
        "“海洋净滩”的时间或地点有变：现为 2026-12-01 09:00 至 2026-12-01 12:00，地点 里箬沙滩"
        "（原为 2026-12-01 07:00，金沙滩）。")
    assert delivery.render("task.changed", context, "en") == (
        "Changed: 海洋净滩",
        "“海洋净滩” has moved: now 2026-12-01 09:00 to 2026-12-01 12:00 at 里箬沙滩 (was 2026-12-01 07:00, 金沙滩).")
    assert delivery.render("task.cancelled", context) == (
        "任务取消：海洋净滩", "很抱歉，原定 2026-12-01 09:00 开始的“海洋净滩”已取消。原因：台风预警")
    assert delivery.render("task.cancelled", context, "en") == (
        "Cancelled: 海洋净滩", "Sorry: “海洋净滩”, due to start 2026-12-01 09:00, is cancelled. Reason: 台风预警")


async def test_reminders_follow_a_moved_start(db: Any, clean: None) -> None:
    # given a confirmed volunteer on a task starting in 20 hours, reminded a day before
    admin, _ = await factories.admin(db)
    task = await factories.task(db, admin, slots=3, starts_in=timedelta(hours=20))
    ((volunteer, _, signup),) = await signed_up(db, task, 1)
    assert volunteer.volunteer_id is not None
    now = datetime.now(UTC)
    async with db.unit_of_work() as session:
        assert (await notifications.send_due_reminders(session, now))["reminders"] == 1

    # when the task moves 10 hours later, and the sweep runs now, 7 hours later (twice) and 28 hours later
    new_start = task.starts_at + timedelta(hours=10)
    async with db.unit_of_work() as session:
        await tasks.update_task(session, admin, UpdateTask(task_id=task.id, starts_at=new_start,
                                                           ends_at=new_start + timedelta(hours=3)))
    sent = []
    for at in (now, now + timedelta(hours=7), now + timedelta(hours=7), now + timedelta(hours=28)):
        async with db.unit_of_work() as session:
            sent.append((await notifications.send_due_reminders(session, at))["reminders"])

    # then the day-before and 2-hour reminders went out again for the new start, once each
    assert sent == [0, 1, 0, 1]
    reminders = [p for k, p in await inbox_of(db, volunteer_id=volunteer.volunteer_id) if k == "task.reminder"]
    assert [(p["hoursBefore"], datetime.fromisoformat(p["startsAt"])) for p in reminders] == [
        (24.0, task.starts_at), (24.0, new_start), (2.0, new_start)]
    assert {p["signupId"] for p in reminders} == {str(signup.id)}


async def test_a_reminder_sent_before_keys_had_the_start_is_not_sent_again(db: Any, clean: None) -> None:
    # given a reminder written under the old key (without the start) for the task's current start
    admin, _ = await factories.admin(db)
    task = await factories.task(db, admin, slots=3, starts_in=timedelta(hours=20))
    ((volunteer, _, signup),) = await signed_up(db, task, 1)
    async with db.unit_of_work() as session:
        await notifications.notify(session, volunteer_id=volunteer.volunteer_id, kind="task.reminder",
                                   payload={"signupId": str(signup.id), "taskId": str(task.id), "hoursBefore": 24.0,
                                            "startsAt": task.starts_at.isoformat()},
                                   dedupe_key=f"task.reminder:24h:{signup.id}")

    # when the sweep runs; and again after the task moved
    async with db.unit_of_work() as session:
        before = await notifications.send_due_reminders(session)
    new_start = task.starts_at + timedelta(hours=1)
    async with db.unit_of_work() as session:
        await tasks.update_task(session, admin, UpdateTask(task_id=task.id, starts_at=new_start,
                                                           ends_at=new_start + timedelta(hours=3)))
    async with db.unit_of_work() as session:
        after = await notifications.send_due_reminders(session)

    # then it is not sent twice for the same start, and is sent for the new one
    assert (before["reminders"], after["reminders"]) == (0, 1)


async def test_a_matched_tasks_applicants_hear_of_a_move(db: Any, clean: None) -> None:
    # given a matched task with an application waiting for the matcher
    admin, _ = await factories.admin(db)
    task = await factories.task(db, admin, slots=1, mode=AssignmentMode.MATCHED)
    ((volunteer, _, signup),) = await signed_up(db, task, 1)
    assert signup.status is SignupStatus.APPLIED and volunteer.volunteer_id is not None

    # when it moves an hour later
    async with db.unit_of_work() as session:
        await tasks.update_task(session, admin, UpdateTask(task_id=task.id, starts_at=task.starts_at + timedelta(
            hours=1), ends_at=task.ends_at + timedelta(hours=1)))

    # then the applicant is told too
    assert await kinds_of(db, volunteer.volunteer_id) == ["task.changed"]
