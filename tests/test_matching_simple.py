"""MATCHED tasks: applications wait for a worker's batch, which fills the slots and waitlists the rest."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tests import factories
from tests.conftest import GraphQL
from tests.test_loop_end_to_end import eventually
from youthlink.db.models import Signup, Task
from youthlink.db.models.enums import AssignmentMode, Role, SignupStatus
from youthlink.domain import matching
from youthlink.graphql.ids import encode_id


async def _statuses(db: Any, task_id: Any) -> dict[Any, SignupStatus]:
    async with db.read() as session:
        rows = await session.execute(select(Signup.volunteer_id, Signup.status).where(Signup.task_id == task_id))
        return {r.volunteer_id: r.status for r in rows}


async def test_request_matching_runs_a_batch_on_the_worker(gql: GraphQL, db: Any, clean: None) -> None:
    # given a 2-slot MATCHED task with three applications
    admin, admin_token = await factories.admin(db)
    task = await factories.task(db, admin, slots=2, mode=AssignmentMode.MATCHED)
    task_id = encode_id("Task", task.id)
    volunteers = await factories.many_volunteers(db, 3)
    for _, token in volunteers:
        signed = (await gql("SignUp", {"taskId": task_id}, token=token))["data"]["signUp"]
        assert signed["signup"]["status"] == "APPLIED"

    # when the organization asks for matching
    asked = (await gql("RequestMatching", {"taskId": task_id}, token=admin_token))["data"]["requestMatching"]
    assert asked["errors"] == []

    # then a worker decides: two confirmed, one waitlisted, and the task is full
    async def decided() -> Any:
        statuses = await _statuses(db, task.id)
        return statuses if SignupStatus.APPLIED not in statuses.values() else None

    statuses = await eventually(decided)
    assert sorted(statuses.values()) == [SignupStatus.CONFIRMED, SignupStatus.CONFIRMED, SignupStatus.WAITLISTED]
    async with db.read() as session:
        stored = await session.get(Task, task.id)
    assert stored is not None and stored.filled_slots == 2 and stored.matched_at is not None


async def test_a_retried_batch_changes_nothing(db: Any, clean: None) -> None:
    # given a batch that already decided a task
    admin, _ = await factories.admin(db, Role.CITY_ADMIN, None)
    task = await factories.task(db, admin, slots=1, mode=AssignmentMode.MATCHED)
    volunteers = await factories.many_volunteers(db, 2)
    from youthlink.domain import accounts, signups

    for volunteer_id, _ in volunteers:
        async with db.unit_of_work() as session:
            from youthlink.db.models import Account

            account = await session.scalar(select(Account).where(Account.volunteer_id == volunteer_id))
            assert account is not None
            actor = await accounts.load_actor(session, account.id)
            await signups.sign_up(session, actor, task.id)
    async with db.unit_of_work() as session:
        first = await matching.run_batch(session, [task.id])
    before = await _statuses(db, task.id)

    # when the same batch runs again (a redelivered job)
    async with db.unit_of_work() as session:
        second = await matching.run_batch(session, [task.id])

    # then nothing changes
    assert first["confirmed"] == 1 and first["waitlisted"] == 1
    assert second == {"tasks": 0, "confirmed": 0, "waitlisted": 0}
    assert await _statuses(db, task.id) == before
