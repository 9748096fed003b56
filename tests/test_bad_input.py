"""Malformed or out-of-range input through the HTTP GraphQL API: always a UserError with a stable code and
field (never a 500 or a masked error), and never anything half-written in the database."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from tests import factories
from tests.conftest import GraphQL
from youthlink.db.models import Account, Adjustment, ServiceRecord, Signup, Task, Volunteer
from youthlink.db.models.enums import RecordStatus, Role, SignupStatus
from youthlink.domain import hours, signups
from youthlink.domain.actor import Actor
from youthlink.domain.inputs import RecordServiceHours
from youthlink.graphql.ids import encode_id

# Helpers


def refused(body: dict[str, Any], mutation: str, result_field: str) -> dict[str, Any]:
    """The single UserError of a refused mutation (no top-level error: the `gql` fixture checks that)."""
    payload = body["data"][mutation]
    assert payload[result_field] is None, payload
    assert len(payload["errors"]) == 1, payload["errors"]
    error: dict[str, Any] = payload["errors"][0]
    assert error["message"], error
    return error


async def count(db: Any, model: Any, *where: Any) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def filled_slots(db: Any, task_id: uuid.UUID) -> int:
    async with db.read() as session:
        task = await session.get(Task, task_id)
    assert task is not None
    return task.filled_slots


async def signups_of(db: Any, task_id: uuid.UUID, volunteer_id: uuid.UUID | None) -> list[Signup]:
    async with db.read() as session:
        return list((await session.scalars(
            select(Signup).where(Signup.task_id == task_id, Signup.volunteer_id == volunteer_id)
        )).all())


def task_input(org_id: str, name: str, **overrides: Any) -> dict[str, Any]:
    starts = datetime.now(UTC) + timedelta(days=3)
    values: dict[str, Any] = {
        "organizationId": org_id, "projectId": None, "title": name, "description": "清理沙滩垃圾",
        "startsAt": starts.isoformat(), "endsAt": (starts + timedelta(hours=3)).isoformat(),
        "slots": 10, "requiredSkills": [], "assignmentMode": "FIRST_COME",
        "location": {"address": "石塘镇金沙滩", "lat": 28.26, "lng": 121.61}, "townId": None,
        "signupDeadline": None, "minAge": None, "publish": True,
    }
    values.update(overrides)
    return values


async def alliance_id(db: Any) -> str:
    return encode_id("Organization", (await factories.organization(db)).id)


async def approved_record(db: Any, admin: Actor) -> ServiceRecord:
    """An approved 2-hour record of a volunteer added to a task that already happened (补录)."""
    past = await factories.task(db, admin, starts_in=-timedelta(days=1), hours=3)
    vol, _ = await factories.volunteer(db)
    assert vol.volunteer_id is not None
    async with db.unit_of_work() as session:
        signup = await signups.add_participant(session, admin, past.id, vol.volunteer_id)
        record = await hours.record_paper_hours(session, admin, RecordServiceHours(
            signup_id=signup.id, started_at=past.starts_at, ended_at=past.starts_at + timedelta(hours=2)))
    async with db.unit_of_work() as session:
        (approved,) = await hours.approve_records(session, admin, [record.id])
    return approved


# CreateTask

_SOON = datetime.now(UTC).replace(microsecond=0)


def _in(days: float, hours: float = 0) -> str:
    return (_SOON + timedelta(days=days, hours=hours)).isoformat()


CREATE_TASK_CASES = [
    pytest.param({"startsAt": _in(3, 3), "endsAt": _in(3)}, "INVALID_TIME_RANGE", "endsAt", id="ends-before-start"),
    pytest.param({"startsAt": _in(3), "endsAt": _in(3)}, "INVALID_TIME_RANGE", "endsAt", id="ends-at-start"),
    pytest.param({"startsAt": _in(3), "endsAt": _in(11)}, "INVALID_TIME_RANGE", "endsAt", id="longer-than-7-days"),
    pytest.param({"slots": 0}, "INVALID_INPUT", "slots", id="zero-slots"),
    pytest.param({"slots": -5}, "INVALID_INPUT", "slots", id="negative-slots"),
    pytest.param({"startsAt": "2031-12-05T08:00:00"}, "INVALID_INPUT", "startsAt", id="naive-datetime"),
    pytest.param({"location": {"address": "石塘镇金沙滩", "lat": 95, "lng": 121.61}}, "INVALID_INPUT",
                 "location.lat", id="latitude-95"),
    pytest.param({"location": {"address": "石塘镇金沙滩", "lat": 28.26, "lng": -181}}, "INVALID_INPUT",
                 "location.lng", id="longitude-minus-181"),
    pytest.param({"title": "   "}, "INVALID_INPUT", "title", id="blank-title"),
    pytest.param({"signupDeadline": _in(4)}, "INVALID_DEADLINE", "signupDeadline", id="deadline-after-start"),
    pytest.param({"organizationId": "not-a-global-id"}, "INVALID_ID", "organizationId", id="garbage-id"),
    pytest.param({"organizationId": encode_id("Organization", uuid.uuid4())}, "ORGANIZATION_NOT_FOUND",
                 "organizationId", id="unknown-organization"),
    pytest.param({"townId": encode_id("Town", uuid.uuid4())}, "TOWN_NOT_FOUND", "townId", id="unknown-town"),
]


@pytest.mark.parametrize(("overrides", "code", "field"), CREATE_TASK_CASES)
async def test_create_task_refuses_bad_input(gql: GraphQL, db: Any, clean: None, overrides: dict[str, Any],
                                             code: str, field: str) -> None:
    # given an organization admin of the alliance
    _, token = await factories.admin(db)
    title = f"bad input {uuid.uuid4()}"

    # when they post a task with one bad value
    body = await gql("CreateTask", {"input": task_input(await alliance_id(db), title, **overrides)}, token=token)

    # then it is refused with a code pointing at that value, and no task exists
    error = refused(body, "createTask", "task")
    assert (error["code"], error["field"]) == (code, field)
    assert await count(db, Task, Task.title == title) == 0


async def test_create_task_refuses_an_id_of_the_wrong_type(gql: GraphQL, db: Any, clean: None) -> None:
    # given an organization admin, and the global ID of a town (not an organization)
    _, token = await factories.admin(db)
    town_id = encode_id("Town", (await factories.town(db)).id)
    title = f"wrong id {uuid.uuid4()}"

    # when the town's ID is sent as the organization
    body = await gql("CreateTask", {"input": task_input(town_id, title)}, token=token)

    # then it is refused as an invalid ID and nothing is created
    error = refused(body, "createTask", "task")
    assert (error["code"], error["field"]) == ("INVALID_ID", "organizationId")
    assert await count(db, Task, Task.title == title) == 0


async def test_a_volunteer_cannot_create_a_task(gql: GraphQL, db: Any, clean: None) -> None:
    # given a logged-in volunteer
    _, token = await factories.volunteer(db)
    title = f"volunteer's task {uuid.uuid4()}"

    # when they try to post a task for the alliance
    body = await gql("CreateTask", {"input": task_input(await alliance_id(db), title)}, token=token)

    # then it is refused as FORBIDDEN, pointing at the organization, and no task exists
    error = refused(body, "createTask", "task")
    assert (error["code"], error["field"]) == ("FORBIDDEN", "organizationId")
    assert await count(db, Task, Task.title == title) == 0


# RegisterVolunteer

def _registration(phone: str, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"name": "林晓", "phone": phone, "password": factories.PASSWORD,
                              "birthDate": "2001-05-04", "skills": ["first_aid"],
                              "location": {"lat": 28.27, "lng": 121.60}}
    values.update(overrides)
    return values


REGISTRATION_CASES = [
    pytest.param(lambda phone: {"password": "short1"}, "WEAK_PASSWORD", "password", id="short-password"),
    pytest.param(lambda phone: {"password": "password1"}, "WEAK_PASSWORD", "password", id="common-password"),
    pytest.param(lambda phone: {"password": f"my{phone}"}, "WEAK_PASSWORD", "password", id="password-has-phone"),
    pytest.param(lambda phone: {"password": "aaaaaaaaaaaa"}, "WEAK_PASSWORD", "password", id="one-char-password"),
    pytest.param(lambda phone: {"birthDate": (date.today() + timedelta(days=30)).isoformat()},
                 "INVALID_BIRTH_DATE", "birthDate", id="born-in-the-future"),
    pytest.param(lambda phone: {"birthDate": "1890-01-01"}, "INVALID_BIRTH_DATE", "birthDate", id="born-1890"),
    pytest.param(lambda phone: {"skills": ["First Aid!"]}, "INVALID_INPUT", "skills", id="malformed-skill"),
    pytest.param(lambda phone: {"townId": "garbage"}, "INVALID_ID", "townId", id="garbage-town-id"),
    pytest.param(lambda phone: {"location": {"lat": 95, "lng": 121.6}}, "INVALID_INPUT", "location.lat",
                 id="latitude-95"),
]


@pytest.mark.parametrize(("change", "code", "field"), REGISTRATION_CASES)
async def test_registration_refuses_bad_input(gql: GraphQL, db: Any, clean: None, change: Any, code: str,
                                              field: str) -> None:
    # given a fresh phone number
    phone = factories.next_phone()

    # when someone registers with one bad value
    body = await gql("RegisterVolunteer", {"input": _registration(phone, **change(phone))})

    # then it is refused with a code pointing at that value, with no token, and no account or volunteer
    error = refused(body, "registerVolunteer", "volunteer")
    assert (error["code"], error["field"]) == (code, field)
    assert body["data"]["registerVolunteer"]["token"] is None
    assert await count(db, Account, Account.phone == phone) == 0
    assert await count(db, Volunteer, Volunteer.phone == phone) == 0


@pytest.mark.parametrize("phone", ["12345", "23812345678", "1381234567x", "138123456789", ""])
async def test_registration_refuses_a_malformed_phone(gql: GraphQL, db: Any, clean: None, phone: str) -> None:
    # given no one registered yet
    before = await count(db, Account)

    # when someone registers with a phone number that is not a mainland mobile number
    body = await gql("RegisterVolunteer", {"input": _registration(phone)})

    # then it is refused, pointing at the phone, and no account was created
    error = refused(body, "registerVolunteer", "volunteer")
    assert (error["code"], error["field"]) == ("INVALID_INPUT", "phone")
    assert await count(db, Account) == before


async def test_registration_refuses_a_phone_already_registered(gql: GraphQL, db: Any, clean: None) -> None:
    # given a registered volunteer
    first = await gql("RegisterVolunteer", {"input": _registration(phone := factories.next_phone())})
    assert first["data"]["registerVolunteer"]["errors"] == []

    # when someone else registers with the same phone
    body = await gql("RegisterVolunteer", {"input": _registration(phone, name="陈浩", birthDate="1995-01-01")})

    # then it is refused as PHONE_TAKEN and there is still one account, the first one
    error = refused(body, "registerVolunteer", "volunteer")
    assert (error["code"], error["field"]) == ("PHONE_TAKEN", "phone")
    assert await count(db, Account, Account.phone == phone) == 1
    async with db.read() as session:
        volunteer = await session.scalar(select(Volunteer).where(Volunteer.phone == phone))
    assert volunteer is not None and volunteer.name == "林晓"


# SignUp and CancelSignup

async def test_anonymous_sign_up_is_unauthenticated(gql: GraphQL, db: Any, clean: None) -> None:
    # given an open task
    admin, _ = await factories.admin(db)
    task = await factories.task(db, admin)

    # when someone signs up without logging in
    body = await gql("SignUp", {"taskId": encode_id("Task", task.id)}, expect_errors=True)

    # then it is a top-level UNAUTHENTICATED error (by contract) and nothing was taken
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert await count(db, Signup, Signup.task_id == task.id) == 0
    assert await filled_slots(db, task.id) == 0


@pytest.mark.parametrize(("task_id", "code"), [
    pytest.param(lambda: "garbage", "INVALID_ID", id="garbage-id"),
    pytest.param(lambda: encode_id("Volunteer", uuid.uuid4()), "INVALID_ID", id="wrong-type-id"),
    pytest.param(lambda: encode_id("Task", uuid.uuid4()), "TASK_NOT_FOUND", id="unknown-task"),
])
async def test_sign_up_refuses_a_bad_task_id(gql: GraphQL, db: Any, clean: None, task_id: Any, code: str) -> None:
    # given a volunteer
    vol, token = await factories.volunteer(db)

    # when they sign up with a task ID that is not a task
    body = await gql("SignUp", {"taskId": task_id()}, token=token)

    # then it is refused, pointing at the task ID, and the volunteer has no sign-up
    error = refused(body, "signUp", "signup")
    assert (error["code"], error["field"]) == (code, "taskId")
    assert await count(db, Signup, Signup.volunteer_id == vol.volunteer_id) == 0


async def test_sign_up_to_a_closed_task(gql: GraphQL, db: Any, clean: None) -> None:
    # given a task recorded after the fact (its window is past, so it is CLOSED) and a volunteer
    admin, _ = await factories.admin(db)
    task = await factories.task(db, admin, starts_in=-timedelta(days=1), hours=3)
    vol, token = await factories.volunteer(db)

    # when the volunteer signs up
    body = await gql("SignUp", {"taskId": encode_id("Task", task.id)}, token=token)

    # then it is refused as TASK_NOT_OPEN and nothing was taken
    error = refused(body, "signUp", "signup")
    assert (error["code"], error["field"]) == ("TASK_NOT_OPEN", "taskId")
    assert await signups_of(db, task.id, vol.volunteer_id) == []
    assert await filled_slots(db, task.id) == 0


async def test_signing_up_twice(gql: GraphQL, db: Any, clean: None) -> None:
    # given a volunteer confirmed on a task
    admin, _ = await factories.admin(db)
    task = await factories.task(db, admin, slots=5)
    vol, token = await factories.volunteer(db)
    first = await gql("SignUp", {"taskId": encode_id("Task", task.id)}, token=token)
    assert first["data"]["signUp"]["signup"]["status"] == "CONFIRMED"

    # when they sign up again
    body = await gql("SignUp", {"taskId": encode_id("Task", task.id)}, token=token)

    # then it is refused as ALREADY_SIGNED_UP; still one sign-up, holding one slot
    error = refused(body, "signUp", "signup")
    assert (error["code"], error["field"]) == ("ALREADY_SIGNED_UP", "taskId")
    assert [s.status for s in await signups_of(db, task.id, vol.volunteer_id)] == [SignupStatus.CONFIRMED]
    assert await filled_slots(db, task.id) == 1


async def test_sign_up_overlapping_a_confirmed_task(gql: GraphQL, db: Any, clean: None) -> None:
    # given a volunteer confirmed on a task in two days, 09:00-12:00 so to speak
    admin, _ = await factories.admin(db)
    morning = await factories.task(db, admin, starts_in=timedelta(days=2), hours=3)
    overlapping = await factories.task(db, admin, starts_in=timedelta(days=2, hours=2), hours=3, title="社区巡逻")
    vol, token = await factories.volunteer(db)
    first = await gql("SignUp", {"taskId": encode_id("Task", morning.id)}, token=token)
    assert first["data"]["signUp"]["signup"]["status"] == "CONFIRMED"

    # when they sign up to a task starting two hours into the first
    body = await gql("SignUp", {"taskId": encode_id("Task", overlapping.id)}, token=token)

    # then it is refused as TIME_CONFLICT and the second task is untouched
    error = refused(body, "signUp", "signup")
    assert (error["code"], error["field"]) == ("TIME_CONFLICT", "taskId")
    assert "海洋净滩" in error["message"]
    assert await signups_of(db, overlapping.id, vol.volunteer_id) == []
    assert await filled_slots(db, overlapping.id) == 0


@pytest.mark.parametrize(("volunteer", "task", "code"), [
    pytest.param(
        {"birth_date": date(date.today().year - 15, 1, 1)}, {}, "GUARDIAN_CONSENT_REQUIRED",
        id="minor-without-guardian-consent"),
    pytest.param({"skills": ["swimming"]}, {"required_skills": ["first_aid", "swimming"]}, "MISSING_SKILLS",
                 id="missing-skill"),
    pytest.param({"birth_date": date(date.today().year - 15, 1, 1), "guardian_consent": True}, {"min_age": 16},
                 "TOO_YOUNG", id="under-the-task-minimum-age"),
])
async def test_sign_up_refuses_an_ineligible_volunteer(gql: GraphQL, db: Any, clean: None, volunteer: dict[str, Any],
                                                       task: dict[str, Any], code: str) -> None:
    # given an open task and a volunteer who does not qualify for it
    admin, _ = await factories.admin(db)
    created = await factories.task(db, admin, **task)
    vol, token = await factories.volunteer(db, **volunteer)

    # when they sign up
    body = await gql("SignUp", {"taskId": encode_id("Task", created.id)}, token=token)

    # then it is refused with the reason, and no slot was taken
    error = refused(body, "signUp", "signup")
    assert (error["code"], error["field"]) == (code, "taskId")
    assert await signups_of(db, created.id, vol.volunteer_id) == []
    assert await filled_slots(db, created.id) == 0


async def test_cancelling_twice(gql: GraphQL, db: Any, clean: None) -> None:
    # given two volunteers confirmed on a task, and the first one cancels
    admin, _ = await factories.admin(db)
    task = await factories.task(db, admin, slots=5)
    (_, token), (_, other) = await factories.volunteer(db), await factories.volunteer(db)
    mine = (await gql("SignUp", {"taskId": encode_id("Task", task.id)}, token=token))["data"]["signUp"]["signup"]
    await gql("SignUp", {"taskId": encode_id("Task", task.id)}, token=other)
    cancelled = await gql("CancelSignup", {"signupId": mine["id"], "reason": "临时有事"}, token=token)
    assert cancelled["data"]["cancelSignup"]["signup"]["status"] == "CANCELLED"
    assert await filled_slots(db, task.id) == 1

    # when they cancel again
    body = await gql("CancelSignup", {"signupId": mine["id"], "reason": "再取消一次"}, token=token)

    # then it is refused as ALREADY_CANCELLED and the slot was not released a second time
    error = refused(body, "cancelSignup", "signup")
    assert (error["code"], error["field"]) == ("ALREADY_CANCELLED", "signupId")
    assert await filled_slots(db, task.id) == 1


async def test_add_participant_to_a_full_task(gql: GraphQL, db: Any, clean: None) -> None:
    # given a one-slot task that is already filled
    admin, token = await factories.admin(db)
    task = await factories.task(db, admin, slots=1)
    (_, first), (late, _) = await factories.volunteer(db), await factories.volunteer(db)
    await gql("SignUp", {"taskId": encode_id("Task", task.id)}, token=first)
    assert await filled_slots(db, task.id) == 1

    # when the organization adds another volunteer
    assert late.volunteer_id is not None
    body = await gql("AddParticipant", {"taskId": encode_id("Task", task.id),
                                        "volunteerId": encode_id("Volunteer", late.volunteer_id)}, token=token)

    # then it is refused as TASK_FULL, with no sign-up for the second volunteer
    error = refused(body, "addParticipant", "signup")
    assert (error["code"], error["field"]) == ("TASK_FULL", "taskId")
    assert await signups_of(db, task.id, late.volunteer_id) == []
    assert await filled_slots(db, task.id) == 1


# Service hours

async def test_approving_an_unknown_record_approves_nothing(gql: GraphQL, db: Any, clean: None) -> None:
    # given a pending record of a volunteer added to a past task
    admin, token = await factories.admin(db)
    past = await factories.task(db, admin, starts_in=-timedelta(days=1), hours=3)
    vol, _ = await factories.volunteer(db)
    assert vol.volunteer_id is not None
    async with db.unit_of_work() as session:
        signup = await signups.add_participant(session, admin, past.id, vol.volunteer_id)
        record = await hours.record_paper_hours(session, admin, RecordServiceHours(
            signup_id=signup.id, started_at=past.starts_at, ended_at=past.ends_at))

    # when the admin approves it together with an ID that does not exist
    ids = [encode_id("ServiceRecord", record.id), encode_id("ServiceRecord", uuid.uuid4())]
    body = await gql("ApproveServiceRecords", {"ids": ids}, token=token)

    # then it is refused as RECORD_NOT_FOUND, and the real record is still pending
    payload = body["data"]["approveServiceRecords"]
    assert payload["records"] == []
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("RECORD_NOT_FOUND", "ids")]
    async with db.read() as session:
        fresh = await session.get(ServiceRecord, record.id)
        volunteer = await session.get(Volunteer, vol.volunteer_id)
    assert fresh is not None and fresh.status is RecordStatus.PENDING and fresh.approved_at is None
    assert volunteer is not None and volunteer.total_hours == 0


@pytest.mark.parametrize(("change", "field"), [
    pytest.param({"hours": 0}, "hours", id="zero-hours"),
    pytest.param({"hours": 30}, "hours", id="more-than-a-day"),
    pytest.param({"reason": ""}, "reason", id="empty-reason"),
    pytest.param({"reason": "   "}, "reason", id="blank-reason"),
])
async def test_adjustment_refuses_bad_input(gql: GraphQL, db: Any, clean: None, change: dict[str, Any],
                                            field: str) -> None:
    # given an approved 2-hour record
    admin, token = await factories.admin(db)
    record = await approved_record(db, admin)

    # when the admin corrects it with a bad value
    values = {"recordId": encode_id("ServiceRecord", record.id), "hours": -0.5, "reason": "签退时间记错了", **change}
    body = await gql("AdjustServiceRecord", {"input": values}, token=token)

    # then it is refused, pointing at that value; no adjustment, and the volunteer's total is unchanged
    error = refused(body, "adjustServiceRecord", "adjustment")
    assert (error["code"], error["field"]) == ("INVALID_INPUT", field)
    assert await count(db, Adjustment, Adjustment.record_id == record.id) == 0
    async with db.read() as session:
        volunteer = await session.get(Volunteer, record.volunteer_id)
    assert volunteer is not None and volunteer.total_hours == Decimal("2.0")


async def test_adjustment_that_would_make_the_hours_negative(gql: GraphQL, db: Any, clean: None) -> None:
    # given an approved 2-hour record
    admin, token = await factories.admin(db)
    record = await approved_record(db, admin)

    # when the admin takes three hours off it
    values = {"recordId": encode_id("ServiceRecord", record.id), "hours": -3, "reason": "重复登记"}
    body = await gql("AdjustServiceRecord", {"input": values}, token=token)

    # then it is refused as out of range and nothing changed
    error = refused(body, "adjustServiceRecord", "adjustment")
    assert (error["code"], error["field"]) == ("ADJUSTMENT_OUT_OF_RANGE", "hours")
    assert await count(db, Adjustment, Adjustment.record_id == record.id) == 0


@pytest.mark.parametrize(("started", "ended", "code", "field"), [
    pytest.param(timedelta(hours=-5), timedelta(hours=-1), "OUTSIDE_TASK_WINDOW", "startedAt",
                 id="before-the-task"),
    pytest.param(timedelta(hours=4), timedelta(hours=6), "OUTSIDE_TASK_WINDOW", "startedAt", id="after-the-task"),
    pytest.param(timedelta(hours=2), timedelta(hours=1), "INVALID_TIME_RANGE", "endedAt", id="ends-before-start"),
])
async def test_paper_hours_outside_the_task_window(gql: GraphQL, db: Any, clean: None, started: timedelta,
                                                   ended: timedelta, code: str, field: str) -> None:
    # given a volunteer added to a 3-hour task that took place yesterday
    admin, token = await factories.admin(db)
    past = await factories.task(db, admin, starts_in=-timedelta(days=1), hours=3)
    vol, _ = await factories.volunteer(db)
    assert vol.volunteer_id is not None
    async with db.unit_of_work() as session:
        signup = await signups.add_participant(session, admin, past.id, vol.volunteer_id)

    # when the admin records paper attendance for a time outside (or not) the window
    body = await gql("RecordServiceHours", {"input": {
        "signupId": encode_id("Signup", signup.id), "startedAt": (past.starts_at + started).isoformat(),
        "endedAt": (past.starts_at + ended).isoformat(), "note": "纸质签到表"}}, token=token)

    # then it is refused; no record, and the sign-up is still just confirmed
    error = refused(body, "recordServiceHours", "record")
    assert (error["code"], error["field"]) == (code, field)
    assert await count(db, ServiceRecord, ServiceRecord.signup_id == signup.id) == 0
    assert [s.status for s in await signups_of(db, past.id, vol.volunteer_id)] == [SignupStatus.CONFIRMED]


async def test_a_city_admin_is_not_a_volunteer(gql: GraphQL, db: Any, clean: None) -> None:
    # given a city admin (an account without a volunteer profile) and an open task
    admin, _ = await factories.admin(db)
    task = await factories.task(db, admin)
    city, token = await factories.admin(db, Role.CITY_ADMIN, None)

    # when the city admin signs up
    body = await gql("SignUp", {"taskId": encode_id("Task", task.id)}, token=token)

    # then it is refused with a code (not a crash) and nothing was taken
    error = refused(body, "signUp", "signup")
    assert error["code"] == "NOT_A_VOLUNTEER"
    assert await count(db, Signup, Signup.task_id == task.id) == 0
    assert city.volunteer_id is None
