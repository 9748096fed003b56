"""A task never takes more volunteers than it has slots, whatever the concurrency."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from tests import factories
from tests.conftest import GraphQL
from youthlink.db.models import Signup, Task
from youthlink.db.models.enums import Role, SignupStatus
from youthlink.graphql.ids import encode_id


async def test_200_concurrent_signups_fill_exactly_20_slots(gql: GraphQL, db: Any, clean: None) -> None:
    # given a 20-slot first-come task and 200 volunteers
    admin, _ = await factories.admin(db, Role.CITY_ADMIN, None)
    task = await factories.task(db, admin, slots=20)
    volunteers = await factories.many_volunteers(db, 200)
    task_id = encode_id("Task", task.id)

    # when all 200 sign up at once through the HTTP API
    results = await asyncio.gather(*[gql("SignUp", {"taskId": task_id}, token=token) for _, token in volunteers])

    # then exactly 20 are confirmed and 180 waitlisted, and every request got a clean answer
    statuses = [r["data"]["signUp"]["signup"]["status"] for r in results]
    assert all(r["data"]["signUp"]["errors"] == [] for r in results)
    assert statuses.count("CONFIRMED") == 20
    assert statuses.count("WAITLISTED") == 180
    async with db.read() as session:
        stored = await session.get(Task, task.id)
        confirmed = await session.scalar(
            select(func.count()).select_from(Signup)
            .where(Signup.task_id == task.id, Signup.status == SignupStatus.CONFIRMED)
        )
    assert stored is not None and stored.filled_slots == 20 and confirmed == 20


async def test_concurrent_cancellations_promote_the_waitlist_without_overbooking(gql: GraphQL, db: Any,
                                                                                 clean: None) -> None:
    # given a full 5-slot task with a waitlist of 10
    admin, _ = await factories.admin(db, Role.CITY_ADMIN, None)
    task = await factories.task(db, admin, slots=5)
    volunteers = await factories.many_volunteers(db, 15)
    task_id = encode_id("Task", task.id)
    signed = [await gql("SignUp", {"taskId": task_id}, token=token) for _, token in volunteers]
    confirmed = [(s["data"]["signUp"]["signup"]["id"], volunteers[i][1]) for i, s in enumerate(signed)
                 if s["data"]["signUp"]["signup"]["status"] == "CONFIRMED"]
    assert len(confirmed) == 5

    # when every confirmed volunteer cancels at once while three more sign up
    late = await factories.many_volunteers(db, 3)
    await asyncio.gather(
        *[gql("CancelSignup", {"signupId": sid, "reason": "临时有事"}, token=tok) for sid, tok in confirmed],
        *[gql("SignUp", {"taskId": task_id}, token=tok) for _, tok in late],
    )

    # then the slots went to waitlisted volunteers first, and the task is exactly full
    async with db.read() as session:
        stored = await session.get(Task, task.id)
        holders = (await session.scalars(
            select(Signup.volunteer_id).where(Signup.task_id == task.id, Signup.status == SignupStatus.CONFIRMED)
        )).all()
    assert stored is not None and stored.filled_slots == 5 == len(holders)
    assert not set(holders) & {v for v, _ in late}
