"""The matching batch against the real PostgreSQL and a real worker: the rules, the order of the objective,
the stored explanation, retries, the advisory lock, and sign-ups and cancellations racing a batch."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyotp
import pytest
from sqlalchemy import func, select, text, update

from tests import factories
from tests.conftest import GraphQL
from tests.test_loop_end_to_end import eventually
from youthlink.db.models import (
    Account,
    MatchingDecision,
    Organization,
    ServiceRecord,
    Signup,
    Task,
    Team,
    TeamMember,
    Volunteer,
)
from youthlink.db.models.enums import (
    SLOT_HOLDING,
    AssignmentMode,
    RecordSource,
    RecordStatus,
    Role,
    SignupStatus,
    TaskStatus,
)
from youthlink.db.models.tasks import MatchingRun
from youthlink.domain import matching, signups
from youthlink.domain.matching import batch as batch_module
from youthlink.domain.matching import candidates
from youthlink.domain.matching import decisions as matching_decisions
from youthlink.graphql.ids import encode_id
from youthlink.workers.app import app

HOME = (28.26, 121.61)  # 石塘
NOW = datetime.now(UTC)


# Helpers (the other matching tests import them): rows written directly, so a test sets exactly the facts it
# needs; the services that normally write them are tested elsewhere.

async def add_volunteers(db: Any, count: int, *, skills: list[str] | None = None, birth: date = date(2000, 1, 1),
                         consent: bool = False, home: tuple[float, float] | None = HOME) -> list[uuid.UUID]:
    async with db.unit_of_work() as session:
        ids = []
        for _ in range(count):
            volunteer = Volunteer(
                name="志愿者", phone=factories.next_phone(), birth_date=birth, skills=sorted(skills or []),
                home_lat=home[0] if home else None, home_lng=home[1] if home else None,
                guardian_name="监护人" if consent else None, guardian_consent_at=NOW if consent else None,
            )
            session.add(volunteer)
            await session.flush()
            ids.append(volunteer.id)
    return ids


async def add_task(db: Any, *, slots: int = 1, starts_in: timedelta = timedelta(days=3), hours: float = 3,
                   mode: AssignmentMode = AssignmentMode.MATCHED, due: bool = True, at: tuple[float, float] = HOME,
                   **fields: Any) -> Task:
    """A published task; `due` puts its sign-up deadline in the past (the beat batch picks it up)."""
    async with db.unit_of_work() as session:
        org = await session.scalar(select(Organization).where(Organization.name == "温岭市社会治理志愿者联盟"))
        assert org is not None
        starts = NOW + starts_in
        task = Task(
            organization_id=org.id, title="海洋净滩 · 石塘", description="", address="石塘镇金沙滩",
            lat=at[0], lng=at[1],
            starts_at=starts, ends_at=starts + timedelta(hours=hours),
            signup_deadline=NOW - timedelta(minutes=1) if due else starts - timedelta(hours=1), slots=slots,
            filled_slots=0, required_skills=[], assignment_mode=mode, checkin_radius_m=500,
            checkin_secret=pyotp.random_base32(), status=TaskStatus.OPEN,
        )
        for key, value in fields.items():
            setattr(task, key, value)
        session.add(task)
        await session.flush()
        task.created_at = NOW - timedelta(days=7)
    return task


async def apply(db: Any, task: Task, volunteers: list[uuid.UUID], *, minutes_apart: int = 1,
                status: SignupStatus = SignupStatus.APPLIED) -> list[uuid.UUID]:
    """Applications, the first volunteer earliest, in the task's current round (read under its row lock, as a
    sign-up reads it)."""
    async with db.unit_of_work() as session:
        ids = []
        current = await session.scalar(select(Task.matching_round).where(Task.id == task.id)
                                       .with_for_update(key_share=True))
        for i, volunteer_id in enumerate(volunteers):
            signup = Signup(task_id=task.id, volunteer_id=volunteer_id, status=status, matching_round=current,
                            applied_at=NOW - timedelta(days=2) + timedelta(minutes=i * minutes_apart))
            session.add(signup)
            await session.flush()
            ids.append(signup.id)
        if status in SLOT_HOLDING:
            await session.execute(update(Task).where(Task.id == task.id)
                                  .values(filled_slots=Task.filled_slots + len(volunteers)))
    return ids


@dataclass(frozen=True)
class Decision:
    """A sign-up as its organization sees it: status, score, explanation, when decided (by volunteer)."""

    id: uuid.UUID
    status: SignupStatus
    match_score: Decimal | None
    match_explanation: dict[str, Any] | None
    decided_at: datetime | None


async def decisions(db: Any, task: Task) -> dict[uuid.UUID, Decision]:
    async with db.read() as session:
        rows = (await session.scalars(select(Signup).where(Signup.task_id == task.id))).all()
        found = await matching_decisions.of_signups(session, rows)
    return {row.volunteer_id: Decision(row.id, row.status, found[row.id].score, found[row.id].explanation,
                                       found[row.id].decided_at) for row in rows}


async def run_batch(db: Any, task_ids: list[uuid.UUID] | None = None) -> dict[str, Any]:
    async with db.unit_of_work() as session:
        return await matching.run_batch(session, task_ids)


async def assert_invariants(db: Any) -> None:
    """No task over its slots (and filled_slots counts its holders); nobody holds two clashing tasks."""
    async with db.read() as session:
        overbooked = (await session.execute(text("""
            SELECT t.id FROM tasks t LEFT JOIN signups s ON s.task_id = t.id
              AND s.status IN ('CONFIRMED', 'CHECKED_IN', 'COMPLETED')
            GROUP BY t.id HAVING count(s.id) <> max(t.filled_slots) OR count(s.id) > max(t.slots)
        """))).all()
        clashes = (await session.execute(text("""
            SELECT a.volunteer_id FROM signups a JOIN tasks ta ON ta.id = a.task_id
            JOIN signups b ON b.volunteer_id = a.volunteer_id AND b.id < a.id JOIN tasks tb ON tb.id = b.task_id
            WHERE a.status IN ('CONFIRMED', 'CHECKED_IN', 'COMPLETED')
              AND b.status IN ('CONFIRMED', 'CHECKED_IN', 'COMPLETED')
              AND ta.starts_at < tb.ends_at AND tb.starts_at < ta.ends_at
        """))).all()
    assert overbooked == [] and clashes == []


def run_job(name: str, **kwargs: Any) -> Any:
    """Through the broker to the real worker, and wait for it (results are not stored: poll the database)."""
    return app.send_task(name, kwargs=kwargs)


# The rules

# Pairs are evaluated a chunk at a time (candidates.EVALUATION_CHUNK, hundreds of thousands): the rule tests also
# run with chunks of two pairs, so each rule and factor is seen to hold across the chunks' boundaries.
CHUNKS = pytest.mark.parametrize("chunk", [candidates.EVALUATION_CHUNK, 2], ids=["one-chunk", "chunks-of-2"])


@CHUNKS
async def test_hard_rules_reject_ineligible_applications_with_their_reason(
    db: Any, clean: None, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(candidates, "EVALUATION_CHUNK", chunk)
    # given a task for adults of 16+ with first-aid skills living within 5 km, and one applicant per rule
    task = await add_task(db, slots=5, required_skills=["first_aid"], min_age=16, match_radius_km=5.0)
    ok = await add_volunteers(db, 1, skills=["first_aid", "swimming"])
    no_skill = await add_volunteers(db, 1, skills=["swimming"])
    too_young = await add_volunteers(db, 1, skills=["first_aid"], birth=(NOW - timedelta(days=15 * 365)).date(),
                                     consent=True)
    no_consent = await add_volunteers(db, 1, skills=["first_aid"], birth=(NOW - timedelta(days=17 * 365)).date())
    far = await add_volunteers(db, 1, skills=["first_aid"], home=(28.66, 121.61))  # about 44 km north
    homeless = await add_volunteers(db, 1, skills=["first_aid"], home=None)
    await apply(db, task, ok + no_skill + too_young + no_consent + far + homeless)

    # when the batch runs
    result = await run_batch(db)

    # then the eligible one is confirmed and each other one rejected with the rule it breaks
    found = await decisions(db, task)
    assert result["confirmed"] == 1 and result["rejected"] == 5 and result["exact"]
    assert found[ok[0]].status is SignupStatus.CONFIRMED
    expected = {no_skill[0]: "MISSING_SKILLS", too_young[0]: "TOO_YOUNG", no_consent[0]: "GUARDIAN_CONSENT_REQUIRED",
                far[0]: "TOO_FAR", homeless[0]: "NO_HOME_LOCATION"}
    for volunteer_id, reason in expected.items():
        signup = found[volunteer_id]
        assert signup.status is SignupStatus.REJECTED and signup.match_score is None
        assert signup.match_explanation is not None and signup.match_explanation["reason"] == reason
    async with db.read() as session:
        stored = await session.get(Task, task.id)
    assert stored is not None and stored.filled_slots == 1 and stored.matched_at is not None


async def test_filling_more_slots_comes_before_a_higher_score(db: Any, clean: None) -> None:
    # given two one-slot tasks at the same time; A (the better match for both) applied to both, B only to X
    x = await add_task(db, slots=1)
    y = await add_task(db, slots=1)
    a = await add_volunteers(db, 1, skills=[])
    b = await add_volunteers(db, 1, home=(28.36, 121.61))  # about 11 km away: a lower distance factor
    await apply(db, x, a + b)
    await apply(db, y, a)

    # when the batch runs (best score first would give X to A, and leave Y empty)
    result = await run_batch(db)

    # then both slots are filled: A takes Y, B takes X
    assert result["confirmed"] == 2 and result["exact"]
    assert (await decisions(db, y))[a[0]].status is SignupStatus.CONFIRMED
    on_x = await decisions(db, x)
    assert on_x[b[0]].status is SignupStatus.CONFIRMED
    assert on_x[a[0]].status is SignupStatus.WAITLISTED
    assert on_x[a[0]].match_explanation is not None and on_x[a[0]].match_explanation["reason"] == "TIME_CONFLICT"
    assert on_x[a[0]].match_score is not None and on_x[a[0]].match_score > on_x[b[0]].match_score  # type: ignore[operator]
    await assert_invariants(db)


@CHUNKS
async def test_a_clash_with_a_task_confirmed_earlier_waitlists_the_application(
    db: Any, clean: None, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(candidates, "EVALUATION_CHUNK", chunk)
    # given a volunteer already confirmed on a first-come task that overlaps a MATCHED one
    earlier = await add_task(db, slots=5, mode=AssignmentMode.FIRST_COME, due=False, hours=4)
    clashing = await add_task(db, slots=5, starts_in=timedelta(days=3, hours=2))
    later = await add_task(db, slots=5, starts_in=timedelta(days=4))
    volunteer = await add_volunteers(db, 1)
    await apply(db, earlier, volunteer, status=SignupStatus.CONFIRMED)
    await apply(db, clashing, volunteer)
    await apply(db, later, volunteer)

    # when the batch runs
    await run_batch(db)

    # then the clashing application waits (the earlier confirmation stands) and the later one is confirmed
    waiting = (await decisions(db, clashing))[volunteer[0]]
    assert waiting.status is SignupStatus.WAITLISTED
    assert waiting.match_explanation is not None and waiting.match_explanation["reason"] == "TIME_CONFLICT"
    assert (await decisions(db, later))[volunteer[0]].status is SignupStatus.CONFIRMED
    await assert_invariants(db)


@CHUNKS
async def test_the_score_and_its_breakdown_are_stored_and_decide_the_slot(
    db: Any, clean: None, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(candidates, "EVALUATION_CHUNK", chunk)
    # given one slot and four applicants alike but for one fact each; the team member applied last
    async with db.unit_of_work() as session:
        org = await session.scalar(select(Organization).where(Organization.name == "温岭市社会治理志愿者联盟"))
        assert org is not None
        team = Team(organization_id=org.id, name=f"净滩队{uuid.uuid4().hex[:6]}")
        session.add(team)
        await session.flush()
        team_id = team.id
    task = await add_task(db, slots=1, team_id=team_id)
    past = await add_task(db, slots=3, mode=AssignmentMode.FIRST_COME, due=False, starts_in=timedelta(days=-20))
    plain, busy, absent, member = [await add_volunteers(db, 1) for _ in range(4)]
    admin = (await factories.admin(db, Role.CITY_ADMIN, None))[0]
    async with db.unit_of_work() as session:
        session.add(TeamMember(team_id=team_id, volunteer_id=member[0]))
        for volunteer_id, status in ((busy[0], SignupStatus.COMPLETED), (absent[0], SignupStatus.NO_SHOW)):
            signup = Signup(task_id=past.id, volunteer_id=volunteer_id, status=status,
                            applied_at=NOW - timedelta(days=25))
            session.add(signup)
            await session.flush()
            if status is SignupStatus.COMPLETED:
                session.add(ServiceRecord(
                    volunteer_id=volunteer_id, organization_id=past.organization_id, task_id=past.id,
                    signup_id=signup.id, activity_name=past.title, service_date=past.starts_at.date(),
                    place=past.address, started_at=past.starts_at, ended_at=past.ends_at, hours=Decimal(3),
                    status=RecordStatus.APPROVED, source=RecordSource.CHECK_IN, note="",
                    due_on=past.starts_at.date() + timedelta(days=14), approved_by=admin.account_id,
                    approved_at=NOW,
                ))
    await apply(db, task, plain + busy + absent + member)

    # when the batch runs
    await run_batch(db)

    # then the team member wins; fairness, reliability and membership show in the stored breakdown
    found = await decisions(db, task)
    assert found[member[0]].status is SignupStatus.CONFIRMED
    factors = {v: dict(zip(("skills", "distance", "fairness", "reliability", "membership", "time"),
                           found[v].match_explanation["factors"], strict=True))  # type: ignore[index]
               for v in (plain[0], busy[0], absent[0], member[0])}
    assert factors[member[0]]["membership"] == 1000 and factors[plain[0]]["membership"] == 0
    assert factors[busy[0]]["fairness"] < factors[plain[0]]["fairness"] == 1000
    assert factors[absent[0]]["reliability"] < factors[plain[0]]["reliability"] == 1000
    assert factors[plain[0]]["time"] > factors[member[0]]["time"]  # applied earlier
    for signup in found.values():
        stored = signup.match_explanation
        assert stored is not None and stored["run"] and stored["facts"]["km"] == 0
        units = sum(round(w * 1000) * f for w, f in zip(stored["weights"], stored["factors"], strict=True)) // 1000
        assert Decimal(units) / 1000 == signup.match_score
    assert found[busy[0]].match_explanation["facts"]["hours"] == 3.0  # type: ignore[index]
    assert found[absent[0]].match_explanation["facts"]["noShows"] == 1  # type: ignore[index]


# The batch as a job

async def test_the_beat_batch_decides_all_due_tasks_together_and_a_retry_changes_nothing(
        db: Any, worker: Any, clean: None) -> None:
    # given two due tasks sharing applicants, and one whose deadline has not passed
    first, second = await add_task(db, slots=2), await add_task(db, slots=2, starts_in=timedelta(days=3, hours=1))
    not_yet = await add_task(db, slots=2, due=False)
    volunteers = await add_volunteers(db, 5)
    await apply(db, first, volunteers)
    await apply(db, second, volunteers[::-1])
    await apply(db, not_yet, volunteers[:1])

    # when the beat's job runs on the worker
    run_job("matching.run_batch")

    async def decided() -> Any:
        async with db.read() as session:
            return await session.scalar(select(func.count()).select_from(MatchingRun))

    await eventually(decided)

    # then one run decided both due tasks (and left the other alone); nobody holds both clashing tasks
    async with db.read() as session:
        run = await session.scalar(select(MatchingRun))
    assert run is not None and run.tasks == 2 and run.confirmed == 4 and run.waitlisted == 6 and run.exact
    assert (await decisions(db, not_yet))[volunteers[0]].status is SignupStatus.APPLIED
    await assert_invariants(db)
    before = {**await decisions(db, first), **{(k, 2): v for k, v in (await decisions(db, second)).items()}}
    snapshot = {k: (v.status, v.match_score, v.decided_at) for k, v in before.items()}

    # when the same job is delivered again (a retry)
    run_job("matching.run_batch")
    run_job("matching.run_batch", task_ids=[str(first.id)])
    await asyncio.sleep(2)

    # then nothing changed, and no second run was recorded
    after = {**await decisions(db, first), **{(k, 2): v for k, v in (await decisions(db, second)).items()}}
    assert {k: (v.status, v.match_score, v.decided_at) for k, v in after.items()} == snapshot
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(MatchingRun)) == 1


async def test_two_batches_at_once_never_overlap(db: Any, clean: None) -> None:
    # given a due task with more applicants than slots
    task = await add_task(db, slots=3)
    await apply(db, task, await add_volunteers(db, 8))

    # when two batches start together (two workers picked up two beats)
    results = await asyncio.gather(run_batch(db), run_batch(db))

    # then the advisory lock made them take turns: one decided everything, the other found nothing to do
    assert sorted(r["confirmed"] for r in results) == [0, 3]
    assert sorted(r["tasks"] for r in results) == [0, 1]
    await assert_invariants(db)


async def test_sign_ups_and_cancellations_racing_a_batch_overbook_nothing_and_lose_nothing(
        gql: GraphQL, db: Any, worker: Any, clean: None) -> None:
    # given 30 MATCHED tasks whose organization asked for matching (so sign-ups stay open), with overlapping
    # times, and 60 volunteers who applied to about 10 each through the API
    _, admin_token = await factories.admin(db)
    rng = random.Random(7)
    tasks = [await add_task(db, slots=rng.randint(2, 6), due=False,
                            starts_in=timedelta(days=3, hours=rng.randint(0, 40)), hours=rng.choice([2, 3, 4]))
             for _ in range(30)]
    people = await factories.many_volunteers(db, 60)
    applied: list[tuple[str, str]] = []  # (signup id, token)
    for _, token in people:
        for task in rng.sample(tasks, 10):
            body = await gql("SignUp", {"taskId": encode_id("Task", task.id)}, token=token)
            signup = body["data"]["signUp"]["signup"]
            if signup is not None:
                applied.append((signup["id"], token))
    late = await factories.many_volunteers(db, 10)

    # when a batch runs on the worker while volunteers cancel applications and others sign up
    for task in tasks:
        await gql("RequestMatching", {"taskId": encode_id("Task", task.id)}, token=admin_token)
    cancelled = rng.sample(applied, 40)
    signing = [gql("SignUp", {"taskId": encode_id("Task", rng.choice(tasks).id)}, token=token) for _, token in late]
    cancelling = [gql("CancelSignup", {"signupId": sid, "reason": "临时有事"}, token=token) for sid, token in cancelled]
    await asyncio.gather(*signing, *cancelling)

    async def settled() -> Any:
        async with db.read() as session:
            runs = await session.scalar(select(func.count()).select_from(MatchingRun))
            pending = await session.scalar(text("SELECT count(*) FROM outbox_jobs WHERE state = 'PENDING'"))
        return runs and not pending

    await eventually(settled, within=60)
    run_job("matching.run_batch", task_ids=[str(t.id) for t in tasks])  # whatever came in late
    await asyncio.sleep(3)
    await eventually(settled, within=60)

    # then no task is overbooked and nobody holds clashing tasks
    await assert_invariants(db)
    async with db.read() as session:
        statuses = dict((await session.execute(
            select(Signup.status, func.count()).where(Signup.task_id.in_([t.id for t in tasks]))
            .group_by(Signup.status)
        )).all())
        cancelled_ids = {uuid.UUID(str(s)) for s in (await session.scalars(
            select(Signup.id).where(Signup.status == SignupStatus.CANCELLED)
        )).all()}
        slots = sum((await session.scalars(select(Task.slots).where(Task.id.in_([t.id for t in tasks])))).all())
    # every application was decided or cancelled: none is lost, none still waits
    assert SignupStatus.APPLIED not in statuses
    assert len(cancelled_ids) == statuses.get(SignupStatus.CANCELLED, 0) >= 1
    # the slots are full (there were plenty of applicants)
    assert statuses.get(SignupStatus.CONFIRMED, 0) == slots
    total = sum(statuses.values())
    assert total >= len(applied)


async def test_requested_matching_through_the_api_is_decided_by_the_worker(gql: GraphQL, db: Any, worker: Any,
                                                                           clean: None) -> None:
    # given a 2-slot MATCHED task with three applications through the API
    admin, admin_token = await factories.admin(db)
    task = await factories.task(db, admin, slots=2, mode=AssignmentMode.MATCHED)
    task_id = encode_id("Task", task.id)
    for _, token in await factories.many_volunteers(db, 3):
        signed = (await gql("SignUp", {"taskId": task_id}, token=token))["data"]["signUp"]
        assert signed["signup"]["status"] == "APPLIED"

    # when the organization asks for matching
    asked = (await gql("RequestMatching", {"taskId": task_id}, token=admin_token))["data"]["requestMatching"]
    assert asked["errors"] == []

    # then a worker decides, and the organization reads each decision's explanation
    async def decided() -> Any:
        found = await decisions(db, task)
        return found if all(s.status is not SignupStatus.APPLIED for s in found.values()) else None

    found = await eventually(decided)
    assert sorted(s.status for s in found.values()) == [SignupStatus.CONFIRMED, SignupStatus.CONFIRMED,
                                                        SignupStatus.WAITLISTED]
    roster = await gql("""
        query Roster($id: ID!) { node(id: $id) { ... on Task { matchRadiusKm signups(first: 10) { edges { node {
          status matchScore matchExplanation { decision reason message score runId
            factors { key label value weight points detail } } } } } } } }
    """, {"id": task_id}, token=admin_token)
    edges = roster["data"]["node"]["signups"]["edges"]
    assert len(edges) == 3 and roster["data"]["node"]["matchRadiusKm"] is None
    for edge in edges:
        node = edge["node"]
        explained = node["matchExplanation"]
        assert explained["decision"] == node["status"] and explained["score"] == node["matchScore"]
        assert [f["key"] for f in explained["factors"]] == ["skills", "distance", "fairness", "reliability",
                                                            "membership", "time"]
        assert abs(sum(f["points"] for f in explained["factors"]) - node["matchScore"]) < 0.01
        assert explained["message"] in ("按匹配分入选", "名额已满，按匹配分进入候补")
    async with db.read() as session:
        account = await session.scalar(select(Account).where(Account.id == admin.account_id))
    assert account is not None


async def test_a_batch_rechecks_under_locks_what_changed_while_it_solved(db: Any, worker: Any, clean: None) -> None:
    # given a 2-slot task with four applicants, best first; and a first-come task at the same time
    task = await add_task(db, slots=2)
    first_come = await add_task(db, slots=5, mode=AssignmentMode.FIRST_COME, due=False)
    best, second, third, fourth = [await add_volunteers(db, 1, home=(28.26 + 0.02 * i, 121.61)) for i in range(4)]
    signups = await apply(db, task, best + second + third + fourth)
    late = await add_volunteers(db, 1)
    # and the best applicant is in the middle of signing up for the clashing first-come task (it holds their row)
    async with db.sessionmaker() as racing:
        await racing.begin()
        await racing.execute(select(Volunteer.id).where(Volunteer.id == best[0]).with_for_update())

        # when a batch runs: it decides (best and second win), then waits for the winners' rows
        batch = asyncio.create_task(run_batch(db))

        async def waiting_for_the_lock() -> Any:
            async with db.read() as session:
                return await session.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND state = 'active'"))

        await eventually(waiting_for_the_lock)
        # meanwhile the second applicant cancels, a late application arrives, and the best one's sign-up commits
        async with db.unit_of_work() as session:
            cancelled = await session.get(Signup, signups[1])
            assert cancelled is not None and cancelled.status is SignupStatus.APPLIED
            cancelled.status, cancelled.cancelled_at = SignupStatus.CANCELLED, datetime.now(UTC)
        await apply(db, task, late)
        racing.add(Signup(task_id=first_come.id, volunteer_id=best[0], status=SignupStatus.CONFIRMED))
        await racing.execute(update(Task).where(Task.id == first_come.id).values(filled_slots=1))
        await racing.commit()
        result = await batch

    # then neither planned winner was confirmed: the cancellation stands, the clash was caught under the lock
    found = await decisions(db, task)
    assert result["confirmed"] == 0
    assert found[second[0]].status is SignupStatus.CANCELLED
    assert found[best[0]].status is SignupStatus.WAITLISTED
    assert found[best[0]].match_explanation["reason"] == "TIME_CONFLICT"  # type: ignore[index]
    assert found[late[0]].status is SignupStatus.APPLIED  # for the next batch
    # and the two free slots went to the waitlist, best score first, by the worker
    async def promoted() -> Any:
        now = await decisions(db, task)
        return now if now[third[0]].status is SignupStatus.CONFIRMED else None

    found = await eventually(promoted)
    assert found[fourth[0]].status is SignupStatus.CONFIRMED
    assert found[third[0]].match_explanation["reason"] == "PROMOTED"  # type: ignore[index]
    await assert_invariants(db)


async def test_a_batch_writes_only_its_winners_rows_and_keeps_each_rounds_decision(db: Any, clean: None) -> None:
    # given a 2-slot task with five applicants, one of whom lacks the required skill
    task = await add_task(db, slots=2, required_skills=["first_aid"])
    skilled = await add_volunteers(db, 4, skills=["first_aid"])
    unskilled = await add_volunteers(db, 1)
    ids = await apply(db, task, skilled + unskilled)

    # when the batch runs
    await run_batch(db)

    # then only the two winners' rows changed; the others read their decision from the round's record
    async with db.read() as session:
        rows = {r.volunteer_id: r for r in (await session.scalars(select(Signup).where(Signup.id.in_(ids)))).all()}
        record = await session.scalar(select(MatchingDecision).where(MatchingDecision.task_id == task.id))
    recorded = sorted(r.recorded_status for r in rows.values())
    assert recorded == [SignupStatus.APPLIED] * 3 + [SignupStatus.CONFIRMED] * 2
    assert sorted(r.status for r in rows.values()) == sorted(
        [SignupStatus.CONFIRMED] * 2 + [SignupStatus.WAITLISTED] * 2 + [SignupStatus.REJECTED])
    assert record is not None and record.round == 0 and record.applications == 5
    assert record.rejected == [rows[unskilled[0]].id]
    # and SQL filters on the status agree with it
    async with db.read() as session:
        waitlisted = set((await session.scalars(select(Signup.id).where(
            Signup.task_id == task.id, Signup.status == SignupStatus.WAITLISTED))).all())
    assert waitlisted == {r.id for r in rows.values() if r.status is SignupStatus.WAITLISTED}


async def test_a_rejected_volunteer_may_apply_again_and_the_next_batch_decides_the_new_round(
        db: Any, clean: None) -> None:
    # given a task taking sign-ups whose organization asked for matching, and an application the batch rejects
    # (the volunteer lacked the skill the task asks for)
    task = await add_task(db, slots=2, due=False, required_skills=["first_aid"], matching_requested_at=NOW)
    actor, _ = await factories.volunteer(db)
    assert actor.volunteer_id is not None
    await apply(db, task, [actor.volunteer_id])
    await run_batch(db)
    assert (await decisions(db, task))[actor.volunteer_id].status is SignupStatus.REJECTED

    # when the volunteer learns first aid and signs up again
    async with db.unit_of_work() as session:
        await session.execute(update(Volunteer).where(Volunteer.id == actor.volunteer_id)
                              .values(skills=["first_aid"]))
    async with db.unit_of_work() as session:
        again = await signups.sign_up(session, actor, task.id)
    # then the new application waits in the next round, and the old one is REJECTED in its own row now
    assert again.status is SignupStatus.APPLIED and again.matching_round == 1
    async with db.read() as session:
        rows = (await session.scalars(select(Signup).where(Signup.task_id == task.id)
                                      .order_by(Signup.applied_at))).all()
    assert [(r.recorded_status, r.status) for r in rows] == [
        (SignupStatus.REJECTED, SignupStatus.REJECTED), (SignupStatus.APPLIED, SignupStatus.APPLIED)]

    # and the next batch confirms it
    async with db.unit_of_work() as session:
        await session.execute(update(Task).where(Task.id == task.id).values(matching_requested_at=NOW))
    result = await run_batch(db)
    assert result["confirmed"] == 1
    async with db.read() as session:
        assert (await session.get(Signup, again.id)).status is SignupStatus.CONFIRMED  # type: ignore[union-attr]


async def test_rounds_a_failed_batch_closed_are_decided_by_the_next_one(db: Any, clean: None) -> None:
    # given a due task whose first round a batch closed before failing (nothing decided)
    task = await add_task(db, slots=1)
    first = await add_volunteers(db, 1)
    await apply(db, task, first)
    async with db.unit_of_work() as session:
        await batch_module.close_rounds(session, None, datetime.now(UTC))
    # and an application that came after, in the next round
    second = await add_volunteers(db, 1, home=(28.30, 121.61))
    await apply(db, task, second)

    # when the next batch runs
    result = await run_batch(db)

    # then it decided both rounds, together, one record each, and nothing is left undecided
    assert result["applications"] == 2 and result["confirmed"] == 1
    found = await decisions(db, task)
    assert found[first[0]].status is SignupStatus.CONFIRMED  # nearer, so the better score
    assert found[second[0]].status is SignupStatus.WAITLISTED
    assert found[second[0]].match_explanation is not None
    async with db.read() as session:
        rounds = (await session.scalars(select(MatchingDecision.round).where(MatchingDecision.task_id == task.id)
                                        .order_by(MatchingDecision.round))).all()
        current = await session.get(Task, task.id)
    assert rounds == [0, 1]
    assert current is not None and current.decided_round == current.matching_round == 2
    assert (await run_batch(db))["applications"] == 0
