"""On-site check-in and check-out through the HTTP GraphQL API, and the worker crediting hours once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from tests import factories
from tests.conftest import GraphQL
from youthlink.db.models import OutboxJob, ServiceRecord, Signup, Task
from youthlink.db.models.enums import RecordStatus, SignupStatus
from youthlink.domain import signups, tasks
from youthlink.domain.actor import Actor
from youthlink.graphql.ids import decode_id, encode_id

ON_SITE = {"lat": 28.2601, "lng": 121.6102}  # ~15 m from the task's 28.26, 121.61
FAR_AWAY = {"lat": 28.30, "lng": 121.61}  # ~4.4 km north


async def signed_up(gql: GraphQL, db: Any, admin: Actor, **task: Any) -> tuple[Task, str, str]:
    """A task, and a volunteer confirmed on it through SignUp: (task, sign-up global ID, volunteer token)."""
    created = await factories.task(db, admin, **task)
    _, token = await factories.volunteer(db)
    body = await gql("SignUp", {"taskId": encode_id("Task", created.id)}, token=token)
    signup = body["data"]["signUp"]["signup"]
    assert signup["status"] == "CONFIRMED", body
    return created, signup["id"], token


def wrong_code(task: Task) -> str:
    """A well-formed six-digit code that is not valid at any moment around now."""
    now = datetime.now(UTC)
    valid = {tasks.current_checkin_code(task, now + timedelta(minutes=m)) for m in range(-10, 11)}
    return next(code for code in (f"{i:06d}" for i in range(123456, 10**6)) if code not in valid)


def expired_code(task: Task) -> str:
    """The code that was shown on site an hour ago (rotated away long since)."""
    now = datetime.now(UTC)
    valid = {tasks.current_checkin_code(task, now + timedelta(minutes=m)) for m in range(-10, 11)}
    old = tasks.current_checkin_code(task, now - timedelta(hours=1))
    return old if old not in valid else wrong_code(task)


async def signup_row(db: Any, signup_id: str) -> Signup:
    async with db.read() as session:
        row = await session.get(Signup, decode_id(signup_id, "Signup", "signupId"))
    assert row is not None
    return row


def check_in(signup_id: str, code: str, location: dict[str, float] | None = ON_SITE) -> dict[str, Any]:
    return {"input": {"signupId": signup_id, "code": code, "location": location}}


def refusal(body: dict[str, Any], mutation: str) -> tuple[str, str | None]:
    payload = body["data"][mutation]
    assert payload["signup"] is None, payload
    assert len(payload["errors"]) == 1, payload["errors"]
    return payload["errors"][0]["code"], payload["errors"][0]["field"]


async def eventually(check: Any, within: float = 30.0) -> Any:
    """Poll until `check()` returns something truthy (the worker runs asynchronously)."""
    deadline = asyncio.get_running_loop().time() + within
    while not (result := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.3)
    return result


STARTED = {"starts_in": -timedelta(minutes=10), "hours": 3}  # under way: started ten minutes ago


@pytest.mark.parametrize("code", [pytest.param(wrong_code, id="made-up"), pytest.param(expired_code, id="expired")])
async def test_check_in_with_a_wrong_code(gql: GraphQL, db: Any, clean: None, code: Any) -> None:
    # given a volunteer on site at a task under way
    admin, _ = await factories.admin(db)
    task, signup_id, token = await signed_up(gql, db, admin, **STARTED)

    # when they type a code that is not the one shown now
    body = await gql("CheckIn", check_in(signup_id, code(task)), token=token)

    # then it is refused, pointing at the code, and they are not checked in
    assert refusal(body, "checkIn") == ("CHECKIN_CODE_INVALID", "code")
    row = await signup_row(db, signup_id)
    assert row.status is SignupStatus.CONFIRMED and row.checked_in_at is None


async def test_check_in_too_far_from_the_task(gql: GraphQL, db: Any, clean: None) -> None:
    # given a volunteer with the right code, but 4 km from the task (the radius is 500 m)
    admin, _ = await factories.admin(db)
    task, signup_id, token = await signed_up(gql, db, admin, **STARTED)

    # when they check in from there
    body = await gql("CheckIn", check_in(signup_id, tasks.current_checkin_code(task), FAR_AWAY), token=token)

    # then it is refused, pointing at the location, with the distance in the message
    assert refusal(body, "checkIn") == ("CHECKIN_TOO_FAR", "location")
    assert "500" in body["data"]["checkIn"]["errors"][0]["message"]
    assert (await signup_row(db, signup_id)).status is SignupStatus.CONFIRMED


async def test_check_in_without_a_location(gql: GraphQL, db: Any, clean: None) -> None:
    # given a volunteer with the right code whose phone shares no location
    admin, _ = await factories.admin(db)
    task, signup_id, token = await signed_up(gql, db, admin, **STARTED)

    # when they check in without one
    body = await gql("CheckIn", check_in(signup_id, tasks.current_checkin_code(task), None), token=token)

    # then it is refused as LOCATION_REQUIRED
    assert refusal(body, "checkIn") == ("LOCATION_REQUIRED", "location")
    assert (await signup_row(db, signup_id)).status is SignupStatus.CONFIRMED


async def test_check_in_too_early(gql: GraphQL, db: Any, clean: None) -> None:
    # given a volunteer confirmed on a task starting in three hours (check-in opens 30 minutes before)
    admin, _ = await factories.admin(db)
    task, signup_id, token = await signed_up(gql, db, admin, starts_in=timedelta(hours=3))

    # when they check in on site with the right code now
    body = await gql("CheckIn", check_in(signup_id, tasks.current_checkin_code(task)), token=token)

    # then it is refused as too early
    assert refusal(body, "checkIn") == ("CHECKIN_TOO_EARLY", "signupId")
    assert (await signup_row(db, signup_id)).status is SignupStatus.CONFIRMED


async def test_check_in_after_the_task_ended(gql: GraphQL, db: Any, clean: None) -> None:
    # given a task that ended an hour ago, with a volunteer the organization added to it (补录)
    admin, _ = await factories.admin(db)
    task = await factories.task(db, admin, starts_in=-timedelta(hours=4), hours=3)
    vol, token = await factories.volunteer(db)
    assert vol.volunteer_id is not None
    async with db.unit_of_work() as session:
        added = await signups.add_participant(session, admin, task.id, vol.volunteer_id)
    signup_id = encode_id("Signup", added.id)

    # when the volunteer checks in on site with the right code
    body = await gql("CheckIn", check_in(signup_id, tasks.current_checkin_code(task)), token=token)

    # then it is refused as too late
    assert refusal(body, "checkIn") == ("CHECKIN_TOO_LATE", "signupId")
    assert (await signup_row(db, signup_id)).status is SignupStatus.CONFIRMED


async def test_checking_in_someone_elses_sign_up(gql: GraphQL, db: Any, clean: None) -> None:
    # given a volunteer confirmed on a task under way, and another volunteer on site with the code
    admin, _ = await factories.admin(db)
    task, signup_id, _ = await signed_up(gql, db, admin, **STARTED)
    _, stranger = await factories.volunteer(db)

    # when the other volunteer checks in the first one's sign-up
    body = await gql("CheckIn", check_in(signup_id, tasks.current_checkin_code(task)), token=stranger)

    # then it is refused as FORBIDDEN and the sign-up is not checked in
    assert refusal(body, "checkIn") == ("FORBIDDEN", "signupId")
    row = await signup_row(db, signup_id)
    assert row.status is SignupStatus.CONFIRMED and row.checked_in_at is None


async def test_checking_out_someone_elses_sign_up(gql: GraphQL, db: Any, clean: None) -> None:
    # given a volunteer checked in at a task under way, and another volunteer
    admin, _ = await factories.admin(db)
    task, signup_id, token = await signed_up(gql, db, admin, **STARTED)
    await gql("CheckIn", check_in(signup_id, tasks.current_checkin_code(task)), token=token)
    _, stranger = await factories.volunteer(db)

    # when the other volunteer checks them out
    body = await gql("CheckOut", {"input": {"signupId": signup_id, "location": ON_SITE}}, token=stranger)

    # then it is refused as FORBIDDEN and the first volunteer is still checked in
    assert refusal(body, "checkOut") == ("FORBIDDEN", "signupId")
    assert (await signup_row(db, signup_id)).status is SignupStatus.CHECKED_IN


async def test_checking_in_twice(gql: GraphQL, db: Any, clean: None) -> None:
    # given a volunteer who has checked in
    admin, _ = await factories.admin(db)
    task, signup_id, token = await signed_up(gql, db, admin, **STARTED)
    first = await gql("CheckIn", check_in(signup_id, tasks.current_checkin_code(task)), token=token)
    assert first["data"]["checkIn"]["signup"]["status"] == "CHECKED_IN"
    checked_in_at = (await signup_row(db, signup_id)).checked_in_at

    # when they check in again
    body = await gql("CheckIn", check_in(signup_id, tasks.current_checkin_code(task)), token=token)

    # then it is refused as ALREADY_CHECKED_IN and their arrival time is unchanged
    assert refusal(body, "checkIn") == ("ALREADY_CHECKED_IN", "signupId")
    row = await signup_row(db, signup_id)
    assert row.status is SignupStatus.CHECKED_IN and row.checked_in_at == checked_in_at


async def test_checking_out_before_checking_in(gql: GraphQL, db: Any, clean: None) -> None:
    # given a volunteer confirmed on a task under way, not checked in
    admin, _ = await factories.admin(db)
    _, signup_id, token = await signed_up(gql, db, admin, **STARTED)

    # when they check out
    body = await gql("CheckOut", {"input": {"signupId": signup_id, "location": ON_SITE}}, token=token)

    # then it is refused as NOT_CHECKED_IN, and no hours are queued for crediting
    assert refusal(body, "checkOut") == ("NOT_CHECKED_IN", "signupId")
    row = await signup_row(db, signup_id)
    assert row.status is SignupStatus.CONFIRMED and row.checked_out_at is None
    async with db.read() as session:
        jobs = await session.scalar(select(func.count()).select_from(OutboxJob).where(OutboxJob.name == "hours.credit"))
    assert jobs == 0


@pytest.mark.parametrize("signup_id", [
    pytest.param(lambda: "garbage", id="garbage-id"),
    pytest.param(lambda: encode_id("Task", uuid.uuid4()), id="wrong-type-id"),
])
async def test_check_in_with_a_bad_signup_id(gql: GraphQL, db: Any, clean: None, signup_id: Any) -> None:
    # given a volunteer
    _, token = await factories.volunteer(db)

    # when they check in with a sign-up ID that is not one
    body = await gql("CheckIn", check_in(signup_id(), "123456"), token=token)

    # then it is refused as an invalid ID
    assert refusal(body, "checkIn") == ("INVALID_ID", "signupId")


async def test_check_in_and_out_credits_the_hours_exactly_once(gql: GraphQL, db: Any, clean: None) -> None:
    from youthlink.workers.app import app

    # given a volunteer confirmed on a 3-hour task that started two hours ago
    admin, admin_token = await factories.admin(db)
    task, signup_id, token = await signed_up(gql, db, admin, starts_in=-timedelta(hours=2), hours=3)

    # when the organization admin opens the roster and reads out the code shown on site
    roster = (await gql("TaskRoster", {"id": encode_id("Task", task.id)}, token=admin_token))["data"]["node"]
    assert [e["node"]["id"] for e in roster["signups"]["edges"]] == [signup_id]
    code = roster["checkInCode"]
    assert code

    # and the volunteer checks in with it
    checked_in = await gql("CheckIn", check_in(signup_id, code), token=token)
    assert checked_in["data"]["checkIn"]["errors"] == []
    assert checked_in["data"]["checkIn"]["signup"]["status"] == "CHECKED_IN"
    assert checked_in["data"]["checkIn"]["signup"]["checkedInAt"]

    # (given: the volunteer actually arrived when the task started; time travel, so the check-out below
    # is two hours of presence rather than a few milliseconds)
    async with db.unit_of_work() as session:
        await session.execute(update(Signup).where(Signup.id == decode_id(signup_id, "Signup", "signupId"))
                              .values(checked_in_at=task.starts_at))

    # and checks out
    out = (await gql("CheckOut", {"input": {"signupId": signup_id, "location": ON_SITE}}, token=token))
    assert out["data"]["checkOut"]["errors"] == []
    assert out["data"]["checkOut"]["signup"]["status"] == "COMPLETED"

    # then the worker credits about two hours, pending approval
    row_id = decode_id(signup_id, "Signup", "signupId")

    async def records() -> list[ServiceRecord]:
        async with db.read() as session:
            return list((await session.scalars(select(ServiceRecord).where(ServiceRecord.signup_id == row_id))).all())

    (record,) = await eventually(records)
    assert record.status is RecordStatus.PENDING and 1.9 <= float(record.hours) <= 2.0

    # when the credit job is delivered again (a redelivery), three times at once
    for _ in range(3):
        app.send_task("hours.credit", kwargs={"signup_id": str(row_id)})
    await asyncio.sleep(3)

    # then there is still exactly one record, with the same hours
    again = await records()
    assert [(r.id, r.hours) for r in again] == [(record.id, record.hours)]
    roster = (await gql("TaskRoster", {"id": encode_id("Task", task.id)}, token=admin_token))["data"]["node"]
    (entry,) = [e["node"] for e in roster["signups"]["edges"]]
    assert entry["status"] == "COMPLETED"
    assert entry["serviceRecord"]["hours"] == float(record.hours) and entry["serviceRecord"]["status"] == "PENDING"
