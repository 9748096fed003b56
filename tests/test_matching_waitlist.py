"""The waitlist of MATCHED tasks: a freed slot goes to the best-scored waitlisted volunteer, by a worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from tests import factories
from tests.conftest import GraphQL
from tests.test_loop_end_to_end import eventually
from tests.test_matching_batch import add_task, add_volunteers, apply, assert_invariants, decisions, run_batch
from youthlink.db.models import Account, OutboxJob, Signup, Task, Volunteer
from youthlink.db.models.enums import AssignmentMode, SignupStatus
from youthlink.domain.matching import waitlist
from youthlink.graphql.ids import encode_id


async def _token_of(db: Any, volunteer_id: Any) -> str:
    """An account for a volunteer made by add_volunteers (to act through the API)."""
    from youthlink.db.models import RoleGrant, Volunteer
    from youthlink.db.models.enums import Role
    from youthlink.domain import accounts

    async with db.unit_of_work() as session:
        volunteer = await session.get(Volunteer, volunteer_id)
        assert volunteer is not None
        account = Account(phone=volunteer.phone, name=volunteer.name, volunteer_id=volunteer.id,
                          password_hash=accounts.hash_password(factories.PASSWORD))
        session.add(account)
        await session.flush()
        session.add(RoleGrant(account_id=account.id, role=Role.VOLUNTEER))
    return accounts.issue_token(account)


async def test_a_cancellation_promotes_the_best_scored_waitlisted_volunteer(gql: GraphQL, db: Any, worker: Any,
                                                                            clean: None) -> None:
    # given a decided 1-slot task: the nearest applicant confirmed; the earliest applicant lives farthest
    task = await add_task(db, slots=1)
    far, middle, near = [await add_volunteers(db, 1, home=(28.26 + d, 121.61)) for d in (0.15, 0.05, 0.0)]
    await apply(db, task, far + middle + near)
    await run_batch(db)
    found = await decisions(db, task)
    assert found[near[0]].status is SignupStatus.CONFIRMED
    token = await _token_of(db, near[0])

    # when the confirmed volunteer cancels through the API
    cancelled = await gql("CancelSignup", {"signupId": encode_id("Signup", found[near[0]].id), "reason": "临时有事"},
                          token=token)
    assert cancelled["data"]["cancelSignup"]["errors"] == []

    # then a worker promotes the best score on the waitlist (not the earliest application)
    async def promoted() -> Any:
        now = await decisions(db, task)
        return now if now[middle[0]].status is SignupStatus.CONFIRMED else None

    found = await eventually(promoted)
    assert found[far[0]].status is SignupStatus.WAITLISTED
    assert found[middle[0]].match_explanation["reason"] == "PROMOTED"  # type: ignore[index]
    await assert_invariants(db)

    # and running the promotion again (a retried job) changes nothing
    before = {k: (v.status, v.decided_at) for k, v in found.items()}
    for _ in range(2):
        async with db.unit_of_work() as session:
            assert await waitlist.promote(session, task.id) == []
    assert {k: (v.status, v.decided_at) for k, v in (await decisions(db, task)).items()} == before


async def test_promotion_skips_a_waitlisted_volunteer_who_is_now_busy(db: Any, clean: None) -> None:
    # given a decided 1-slot task whose best waitlisted volunteer has since been confirmed elsewhere at that time
    task = await add_task(db, slots=1)
    elsewhere = await add_task(db, slots=3, mode=AssignmentMode.FIRST_COME, due=False)
    holder, busy, free = [await add_volunteers(db, 1, home=(28.26 + d, 121.61)) for d in (0.0, 0.01, 0.1)]
    await apply(db, task, holder + busy + free)
    await run_batch(db)
    await apply(db, elsewhere, busy, status=SignupStatus.CONFIRMED)
    async with db.unit_of_work() as session:
        await session.execute(update(Signup).where(Signup.task_id == task.id, Signup.volunteer_id == holder[0])
                              .values(status=SignupStatus.CANCELLED))
        await session.execute(update(Task).where(Task.id == task.id).values(filled_slots=0))

    # when the promotion runs (twice: a retried job)
    for _ in range(2):
        async with db.unit_of_work() as session:
            await waitlist.promote(session, task.id)

    # then the slot went to the next one who is free at that time
    found = await decisions(db, task)
    assert found[busy[0]].status is SignupStatus.WAITLISTED
    assert found[free[0]].status is SignupStatus.CONFIRMED
    await assert_invariants(db)


async def test_promotion_is_not_stopped_by_writes_that_refer_to_the_volunteer_and_retries_when_one_is_busy(
        db: Any, clean: None) -> None:
    # given a decided 1-slot task whose slot was freed, with two volunteers on its waitlist
    task = await add_task(db, slots=1)
    holder, best, next_best = [await add_volunteers(db, 1, home=(28.26 + d, 121.61)) for d in (0.0, 0.01, 0.1)]
    await apply(db, task, holder + best + next_best)
    await run_batch(db)
    async with db.unit_of_work() as session:
        await session.execute(update(Signup).where(Signup.task_id == task.id, Signup.volunteer_id == holder[0])
                              .values(status=SignupStatus.CANCELLED))
        await session.execute(update(Task).where(Task.id == task.id).values(filled_slots=0))

    # when the promotion runs while another transaction writes a row referring to the best one (a notification
    # does: its foreign key key-share-locks the volunteer's row)
    async with db.sessionmaker() as writing:
        await writing.begin()
        await writing.execute(select(Volunteer.id).where(Volunteer.id == best[0]).with_for_update(read=True,
                                                                                                   key_share=True))
        async with db.unit_of_work() as session:
            await waitlist.promote(session, task.id)
        await writing.rollback()

    # then the best one is promoted all the same
    found = await decisions(db, task)
    assert found[best[0]].status is SignupStatus.CONFIRMED

    # and when the best one is busy signing up elsewhere (their row locked for update) after a slot frees again
    async with db.unit_of_work() as session:
        await session.execute(update(Signup).where(Signup.id == found[best[0]].id)
                              .values(status=SignupStatus.CANCELLED))
        await session.execute(update(Task).where(Task.id == task.id).values(filled_slots=0))
        await session.execute(update(Signup).where(Signup.id == found[next_best[0]].id)
                              .values(status=SignupStatus.CANCELLED))  # nobody else to take the slot
        await session.execute(update(Signup).where(Signup.id == found[best[0]].id)
                              .values(status=SignupStatus.WAITLISTED))
    async with db.sessionmaker() as signing_up:
        await signing_up.begin()
        await signing_up.execute(select(Volunteer.id).where(Volunteer.id == best[0]).with_for_update())
        async with db.unit_of_work() as session:
            before = await session.scalar(select(func.count()).select_from(OutboxJob))
            await waitlist.promote(session, task.id)
            retries = (await session.scalars(select(OutboxJob.args).where(OutboxJob.name == "matching.promote")
                                             .order_by(OutboxJob.id.desc()).limit(1))).all()
            after = await session.scalar(select(func.count()).select_from(OutboxJob))
        await signing_up.rollback()

    # then the slot stays free for now and the promotion is recorded again, for the outbox sweep to run shortly
    assert (await decisions(db, task))[best[0]].status is SignupStatus.WAITLISTED
    assert after == before + 1 and retries == [{"task_id": str(task.id)}]
    async with db.unit_of_work() as session:
        await waitlist.promote(session, task.id)
    assert (await decisions(db, task))[best[0]].status is SignupStatus.CONFIRMED
    await assert_invariants(db)


async def test_a_no_show_frees_the_slot_for_the_waitlist_and_lowers_reliability(gql: GraphQL, db: Any, worker: Any,
                                                                                clean: None) -> None:
    # given a MATCHED task under way: one confirmed volunteer, one waitlisted
    _, admin_token = await factories.admin(db)
    task = await add_task(db, slots=1, starts_in=timedelta(minutes=-30), hours=4)
    absent, standby = [await add_volunteers(db, 1, home=(28.26 + d, 121.61)) for d in (0.0, 0.05)]
    await apply(db, task, absent + standby)
    await run_batch(db, [task.id])
    found = await decisions(db, task)
    assert found[absent[0]].status is SignupStatus.CONFIRMED

    # when the organization records that the confirmed volunteer did not come
    marked = await gql("""
        mutation NoShow($id: ID!) { markNoShow(input: {signupId: $id}) { signup { status } errors { code } } }
    """, {"id": encode_id("Signup", found[absent[0]].id)}, token=admin_token)
    assert marked["data"]["markNoShow"] == {"signup": {"status": "NO_SHOW"}, "errors": []}

    # then the stand-by is promoted by a worker, and the no-show counts in the next score
    async def promoted() -> Any:
        now = await decisions(db, task)
        return now if now[standby[0]].status is SignupStatus.CONFIRMED else None

    await eventually(promoted)
    await assert_invariants(db)
    later = await add_task(db, slots=1, starts_in=timedelta(days=5))
    await apply(db, later, absent + standby)
    await run_batch(db, [later.id])
    scored = await decisions(db, later)
    reliability = {v: s.match_explanation["factors"][3] for v, s in scored.items()}  # type: ignore[index]
    assert reliability[absent[0]] < reliability[standby[0]] == 1000
    assert scored[absent[0]].match_explanation["facts"]["noShows"] == 1  # type: ignore[index]


async def test_only_those_who_run_the_task_mark_no_shows_and_only_after_it_starts(gql: GraphQL, db: Any,
                                                                                clean: None) -> None:
    # given a confirmed sign-up of a task that starts tomorrow
    _, admin_token = await factories.admin(db)
    task = await add_task(db, slots=1, starts_in=timedelta(days=1))
    volunteer = await add_volunteers(db, 1)
    (signup_id,) = await apply(db, task, volunteer, status=SignupStatus.CONFIRMED)
    token = await _token_of(db, volunteer[0])
    query = "mutation NoShow($id: ID!) { markNoShow(input: {signupId: $id}) { signup { status } errors { code } } }"

    # when the volunteer, then the organization, try to mark it a no-show before the start
    by_volunteer = await gql(query, {"id": encode_id("Signup", signup_id)}, token=token)
    too_early = await gql(query, {"id": encode_id("Signup", signup_id)}, token=admin_token)

    # then both are refused with a reason, and nothing changed
    assert by_volunteer["data"]["markNoShow"]["errors"] == [{"code": "FORBIDDEN"}]
    assert too_early["data"]["markNoShow"]["errors"] == [{"code": "TASK_NOT_STARTED"}]
    async with db.read() as session:
        status = await session.scalar(select(Signup.status).where(Signup.id == signup_id))
    assert status is SignupStatus.CONFIRMED
    assert datetime.now(UTC) < task.starts_at
