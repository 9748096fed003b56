"""The matching batch: every due MATCHED task's applications decided together, optimally, in one transaction.

    lock     pg_advisory_xact_lock: two batches (or a batch and a promotion) never overlap
    load     the due tasks; their APPLIED sign-ups as a binary COPY; the applicants' facts (set-based)
    build    every hard rule and score factor for every application at once (candidates.evaluate)
    solve    slots filled first, total score second (solver.solve: min-cost flow, CP-SAT where needed)
    write    under row locks (winners' volunteers, then tasks, in id order, the order sign-ups use): re-check
             slots and time clashes against what committed meanwhile, then COPY the decisions into a temporary
             table and apply them with state-guarded UPDATEs (`WHERE status = 'APPLIED'`)

A task is due when it is OPEN, MATCHED, has APPLIED sign-ups, and its deadline (or start) has passed or its
organization asked for matching. An application that arrives during a batch stays APPLIED for the next one;
one cancelled during a batch keeps its cancellation (the guard), and a slot it would have taken is offered
to the waitlist by a `matching.promote` job. Re-running a batch finds nothing APPLIED and changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.config import get_settings
from youthlink.db.models import Signup, Task, Volunteer
from youthlink.db.models.enums import AssignmentMode, SignupStatus, TaskStatus
from youthlink.db.models.tasks import MatchingRun
from youthlink.domain import audit, outbox
from youthlink.domain.matching import candidates, scores, solver
from youthlink.domain.matching.candidates import among

log = logging.getLogger(__name__)
# pg_advisory_xact_lock key: two batches never overlap, whichever workers run them.
MATCHING_LOCK_KEY = 0x59_4C_4D_41  # "YLMA"

CONFIRMED, WAITLISTED, REJECTED = 1, 2, 3
DECISIONS = ("CONFIRMED", "WAITLISTED", "REJECTED")
REASONS = ("SELECTED", "TASK_FULL", "TIME_CONFLICT", "MISSING_SKILLS", "TOO_YOUNG", "GUARDIAN_CONSENT_REQUIRED",
           "NO_HOME_LOCATION", "TOO_FAR")
REASON = {code: i + 1 for i, code in enumerate(REASONS)}  # 1-based, as SQL arrays are
DECISION_ROW = np.dtype([
    ("fields", ">i2"),
    ("l_id", ">i4"), ("id", "V16"),
    ("l_decision", ">i4"), ("decision", ">i2"),
    ("l_reason", ">i4"), ("reason", ">i2"),
    ("l_units", ">i4"), ("units", ">i4"),
    *[(name, ">i4" if name.startswith("l_") else ">i2") for i in range(6) for name in (f"l_f{i}", f"f{i}")],
    ("l_km", ">i4"), ("km", ">i4"),
    ("l_hours", ">i4"), ("hours", ">i4"),
    ("l_attended", ">i4"), ("attended", ">i4"),
    ("l_no_shows", ">i4"), ("no_shows", ">i4"),
    ("l_member", ">i4"), ("member", ">i2"),
])
DECISION_COLUMNS = ["id", "decision", "reason", "units", "f0", "f1", "f2", "f3", "f4", "f5", "km", "hours",
                    "attended", "no_shows", "member"]
DECISIONS_TABLE = """
CREATE TEMPORARY TABLE matching_decisions (
    id uuid, decision int2, reason int2, units int4, f0 int2, f1 int2, f2 int2, f3 int2, f4 int2,
    f5 int2, km int4, hours int4, attended int4, no_shows int4, member int2
) ON COMMIT DROP
"""
# The same shape as scores.explanation(), built by PostgreSQL for every row at once.
EXPLANATION_SQL = """
    jsonb_build_object('v', 1, 'run', CAST(:run AS text),
                       'decision', (CAST(:decisions AS text[]))[d.decision],
                       'reason', (CAST(:reasons AS text[]))[d.reason])
    || CASE WHEN d.units < 0 THEN '{}'::jsonb ELSE jsonb_build_object(
        'factors', jsonb_build_array(d.f0, d.f1, d.f2, d.f3, d.f4, d.f5),
        'weights', CAST(:weights AS jsonb),
        'facts', jsonb_build_object(
            'km', CASE WHEN d.km < 0 THEN NULL ELSE round(d.km / 100.0, 2) END,
            'hours', round(d.hours / 10.0, 1), 'attended', d.attended, 'noShows', d.no_shows,
            'member', CASE d.member WHEN 2 THEN 'TEAM' WHEN 1 THEN 'PROJECT' END)) END
"""


def empty_result() -> dict[str, Any]:
    return {"tasks": 0, "applications": 0, "confirmed": 0, "waitlisted": 0, "rejected": 0}


async def due_tasks(session: AsyncSession, task_ids: Sequence[uuid.UUID] | None, now: datetime) -> list[Task]:
    """OPEN MATCHED tasks with applications whose deadline (or start) passed, or that were asked for, or named."""
    due = or_(Task.matching_requested_at.is_not(None), Task.signup_deadline <= now, Task.starts_at <= now)
    if task_ids:
        due = or_(due, Task.id.in_(list(task_ids)))
    has_applications = select(Signup.id).where(Signup.task_id == Task.id, Signup.status == SignupStatus.APPLIED)
    query = (
        select(Task)
        .where(Task.assignment_mode == AssignmentMode.MATCHED, Task.status == TaskStatus.OPEN, due,
               has_applications.exists())
        .order_by(Task.starts_at, Task.id)
    )
    return list((await session.scalars(query)).all())


@dataclass
class Instance:
    """A batch's input, loaded and evaluated: every application, its rule check and score; the solver's problem."""

    tasks: candidates.Tasks
    apps: candidates.Applications
    volunteers: candidates.Volunteers
    evaluation: candidates.Evaluation
    pool: NDArray[np.int64]  # the applications that are candidates (break no rule)
    problem: solver.Problem
    timings: dict[str, float] = field(default_factory=dict)


async def load_instance(session: AsyncSession, rows: Sequence[Task], now: datetime) -> Instance:
    """Load the tasks' APPLIED sign-ups and their volunteers' facts, check every rule and score every one."""
    settings = get_settings()
    clock = time.perf_counter()
    vocab = candidates.vocabulary(rows)
    tasks = candidates.task_table(rows, vocab, now)
    apps = await candidates.load_applications(session, tasks.ids, SignupStatus.APPLIED)
    roster = candidates.Roster.of(apps.volunteer_ids)
    # The ledger's aggregation, the slowest query after the applications, runs on a second connection while this one
    # reads the rest. It sees what is committed, as a statement of this (READ COMMITTED) transaction would: the batch
    # has written nothing yet.
    async with candidates.side_session(session) as ledger_session:
        ledger = asyncio.create_task(candidates.ledger_facts(ledger_session, roster.ids, now, settings))
        try:
            memberships = await candidates.load_memberships(session, tasks, roster)
            held = await candidates.load_held(session, roster, min(t.starts_at for t in rows),
                                              max(t.ends_at for t in rows))
            volunteers = await candidates.load_volunteers(session, roster.ids, vocab, now, settings, ledger)
        finally:
            if not ledger.done():  # something above failed: stop reading the ledger before its connection goes
                ledger.cancel()
                await asyncio.wait([ledger])
    loaded = time.perf_counter()
    evaluation = candidates.evaluate(candidates.Pairs(apps.task, apps.volunteer, apps.applied), tasks, volunteers,
                                     memberships, held, scores.Weights.from_settings(settings), settings)
    pool = np.flatnonzero(evaluation.candidate)
    problem = solver.Problem(
        task=apps.task[pool], volunteer=apps.volunteer[pool], start=tasks.start[apps.task[pool]],
        end=tasks.end[apps.task[pool]], weight=evaluation.units[pool], capacity=tasks.capacity,
    )
    timings = {"load": round(loaded - clock, 4), "candidates": round(time.perf_counter() - loaded, 4)}
    return Instance(tasks, apps, volunteers, evaluation, pool, problem, timings)


async def run_batch(session: AsyncSession, task_ids: Sequence[uuid.UUID] | None = None) -> dict[str, Any]:
    """Decide every APPLIED sign-up of the due MATCHED tasks, together. Running it twice changes nothing more."""
    await session.execute(select(func.pg_advisory_xact_lock(MATCHING_LOCK_KEY)))
    settings = get_settings()
    weights = scores.Weights.from_settings(settings)
    now = datetime.now(UTC)
    rows = await due_tasks(session, task_ids, now)
    if not rows:
        return empty_result()
    instance = await load_instance(session, rows, now)
    timings = dict(instance.timings)
    clock = time.perf_counter()
    solution = solver.solve(instance.problem, exact_max_candidates=settings.matching_exact_max_candidates,
                            exact_seconds=settings.matching_exact_seconds, workers=settings.matching_exact_workers)
    timings["solve"] = round(time.perf_counter() - clock, 4)
    clock = time.perf_counter()
    tasks, apps = instance.tasks, instance.apps
    decision, reason = _decisions(apps, tasks, instance.evaluation, instance.pool, solution.chosen)
    run_id = uuid.uuid4()
    counts = await _write(session, run_id, now, apps, tasks, instance.volunteers, instance.evaluation, decision,
                          reason, weights)
    timings["write"] = round(time.perf_counter() - clock, 4)
    result: dict[str, Any] = {
        "tasks": tasks.size, "applications": apps.size, **counts, "candidates": instance.problem.size,
        "run_id": str(run_id), "exact": solution.exact, "method": solution.method, "filled": solution.filled,
        "score": solution.score, "bound_filled": solution.bound_filled, "bound_score": solution.bound_score,
        "timings": {**timings, **{f"solver_{k}": round(v, 4) for k, v in solution.timings.items()}},
    }
    session.add(MatchingRun(
        id=run_id, started_at=now, finished_at=datetime.now(UTC), tasks=tasks.size, applications=apps.size,
        confirmed=counts["confirmed"], waitlisted=counts["waitlisted"], rejected=counts["rejected"],
        method=solution.method, exact=solution.exact, filled=solution.filled, score=solution.score,
        bound_filled=solution.bound_filled, bound_score=solution.bound_score, weights=weights.as_dict(),
        timings=result["timings"],
    ))
    audit.record(session, None, "matching.run", "matching_run", run_id, tasks=tasks.size, exact=solution.exact,
                 **counts)
    await session.flush()
    log.info("matching batch %s: %s", run_id, {k: v for k, v in result.items() if k != "timings"})
    return result


def _decisions(apps: candidates.Applications, tasks: candidates.Tasks, evaluation: candidates.Evaluation,
               pool: NDArray[np.int64], chosen: NDArray[np.bool_]) -> tuple[NDArray[np.int16], NDArray[np.int16]]:
    """Per application: CONFIRMED / WAITLISTED / REJECTED and why."""
    n = apps.size
    decision = np.full(n, WAITLISTED, np.int16)
    reason = np.full(n, REASON["TASK_FULL"], np.int16)
    for code in range(candidates.MISSING_SKILLS, candidates.TIME_CONFLICT):
        hit = evaluation.reason == code
        decision[hit], reason[hit] = REJECTED, REASON[candidates.REASON_CODES[code]]
    reason[evaluation.reason == candidates.TIME_CONFLICT] = REASON["TIME_CONFLICT"]
    winners = pool[chosen]
    decision[winners], reason[winners] = CONFIRMED, REASON["SELECTED"]
    # A candidate left out because its volunteer got a clashing task in this batch says so (not "full").
    losers = pool[~chosen]
    clash = solver.overlapping(apps.volunteer[losers], tasks.start[apps.task[losers]], tasks.end[apps.task[losers]],
                               apps.volunteer[winners], tasks.start[apps.task[winners]], tasks.end[apps.task[winners]])
    reason[losers[clash]] = REASON["TIME_CONFLICT"]
    return decision, reason


async def _write(session: AsyncSession, run_id: uuid.UUID, now: datetime, apps: candidates.Applications,
                 tasks: candidates.Tasks, volunteers: candidates.Volunteers, evaluation: candidates.Evaluation,
                 decision: NDArray[np.int16], reason: NDArray[np.int16], weights: scores.Weights) -> dict[str, int]:
    winners = np.flatnonzero(decision == CONFIRMED)
    if winners.shape[0]:
        await _recheck_winners(session, apps, tasks, volunteers, evaluation, winners, decision, reason)
    units = np.where(decision == REJECTED, -1, evaluation.units)
    rows = np.zeros(apps.size, DECISION_ROW)
    for name in DECISION_ROW.names or ():
        if name.startswith("l_"):
            rows[name] = DECISION_ROW[name[2:]].itemsize
    rows["fields"] = len(DECISION_COLUMNS)
    rows["id"] = apps.signup_id
    rows["decision"], rows["reason"], rows["units"] = decision, reason, units
    for i in range(6):
        rows[f"f{i}"] = evaluation.permille[:, i]
    rows["km"] = np.where(np.isnan(evaluation.distance_km), -1, np.rint(np.nan_to_num(evaluation.distance_km) * 100))
    rows["hours"] = np.rint(volunteers.recent_hours[apps.volunteer] * 10)
    rows["attended"] = volunteers.attended[apps.volunteer]
    rows["no_shows"] = volunteers.no_shows[apps.volunteer]
    rows["member"] = evaluation.membership

    await session.execute(text(DECISIONS_TABLE))
    driver = await candidates.driver_connection(session)
    await driver.copy_to_table("matching_decisions", source=candidates.copy_stream(rows), columns=DECISION_COLUMNS,
                               format="binary")
    await session.execute(text("ANALYZE matching_decisions"))  # temporary tables are never auto-analyzed
    params = {"run": str(run_id), "decisions": list(DECISIONS), "reasons": list(REASONS),
              "weights": scores_json(weights), "now": now}
    assignment = f"""
        status = (CAST(:decisions AS text[]))[d.decision], decided_at = :now,
        match_score = CASE WHEN d.units < 0 THEN NULL ELSE d.units / 1000.0 END,
        match_explanation = {EXPLANATION_SQL}
    """
    landed = await session.execute(text(f"""
        UPDATE signups s SET {assignment} FROM matching_decisions d
        WHERE s.id = d.id AND d.decision = {CONFIRMED} AND s.status = 'APPLIED'
        RETURNING s.task_id
    """), params)
    index = {task_id: i for i, task_id in enumerate(tasks.ids)}
    landed_per_task = np.zeros(tasks.size, np.int64)
    for (task_id,) in landed.all():
        landed_per_task[index[uuid.UUID(int=task_id.int)]] += 1
    filled = np.flatnonzero(landed_per_task)
    if filled.shape[0]:
        await session.execute(text("""
            UPDATE tasks t SET filled_slots = t.filled_slots + c.n
            FROM unnest(CAST(:ids AS uuid[]), CAST(:ns AS int[])) AS c(id, n) WHERE t.id = c.id
        """), {"ids": [tasks.ids[t] for t in filled], "ns": landed_per_task[filled].tolist()})
    written = {}
    for code in (WAITLISTED, REJECTED):
        result = await session.execute(text(f"""
            UPDATE signups s SET {assignment} FROM matching_decisions d
            WHERE s.id = d.id AND d.decision = {code} AND s.status = 'APPLIED'
        """), params)
        written[code] = int(result.rowcount or 0)  # type: ignore[attr-defined]
    await session.execute(
        update(Task).where(among(Task.id, tasks.ids)).values(matched_at=now, matching_requested_at=None)
    )
    # The audit trail: each confirmation and rejection; waitlisting is recorded by the run and the explanation.
    await session.execute(text(f"""
        INSERT INTO audit_log (action, entity_type, entity_id, data)
        SELECT 'signup.match', 'signup', d.id::text,
               jsonb_build_object('status', (CAST(:decisions AS text[]))[d.decision], 'run', CAST(:run AS text))
        FROM matching_decisions d JOIN signups s ON s.id = d.id
        WHERE d.decision IN ({CONFIRMED}, {REJECTED}) AND s.decided_at = :now
    """), {"decisions": list(DECISIONS), "run": str(run_id), "now": now})
    # Each volunteer hears the decision: a job recorded in this transaction writes the messages after commit.
    # (Written here, the notifications' foreign keys would take a share lock on every applicant's volunteer row
    # while this transaction holds the tasks' rows: a sign-up holding its volunteer and waiting for a task
    # would deadlock with it.)
    await outbox.record_job(session, "notifications.matching_decided", run_id=str(run_id),
                            task_ids=[str(t) for t in tasks.ids])
    # Slots a winner left by cancelling while the batch ran go to the waitlist, like any cancellation.
    planned = np.bincount(apps.task[decision == CONFIRMED], minlength=tasks.size)
    for t in np.flatnonzero(landed_per_task < planned).tolist():
        await outbox.record_job(session, "matching.promote", task_id=str(tasks.ids[t]))
    return {"confirmed": int(landed_per_task.sum()), "waitlisted": written[WAITLISTED], "rejected": written[REJECTED]}


def scores_json(weights: scores.Weights) -> str:
    return json.dumps(weights.as_list())


async def _recheck_winners(session: AsyncSession, apps: candidates.Applications, tasks: candidates.Tasks,
                           volunteers: candidates.Volunteers, evaluation: candidates.Evaluation,
                           winners: NDArray[np.int64], decision: NDArray[np.int16], reason: NDArray[np.int16]) -> None:
    """Lock the winners' volunteers, then the tasks (the order sign-ups lock in), and demote any winner whose
    slot or time a concurrent transaction took since the batch read them."""
    winner_volunteers = sorted({volunteers.ids[v] for v in apps.volunteer[winners].tolist()})
    await session.execute(
        select(Volunteer.id).where(among(Volunteer.id, winner_volunteers)).order_by(Volunteer.id).with_for_update()
    )
    task_ids = sorted({tasks.ids[t] for t in apps.task[winners].tolist()})
    current = {
        row.id: row for row in await session.execute(
            select(Task.id, Task.slots, Task.filled_slots, Task.status)
            .where(among(Task.id, task_ids)).order_by(Task.id).with_for_update()
        )
    }
    held = await candidates.load_held(session, volunteers, min(t.starts_at for t in tasks.rows),
                                      max(t.ends_at for t in tasks.rows), only=winner_volunteers)
    t = apps.task[winners]
    clash = solver.overlapping(apps.volunteer[winners], tasks.start[t], tasks.end[t], held.volunteer, held.start,
                               held.end)
    decision[winners[clash]], reason[winners[clash]] = WAITLISTED, REASON["TIME_CONFLICT"]
    index = {task_id: i for i, task_id in enumerate(tasks.ids)}
    for task_id, row in current.items():
        room = row.slots - row.filled_slots if row.status is TaskStatus.OPEN else 0
        mine = winners[(apps.task[winners] == index[task_id]) & (decision[winners] == CONFIRMED)]
        if mine.shape[0] > room:
            # Keep the best `room` of them (by score, then application order).
            keep = mine[np.lexsort((mine, -evaluation.units[mine]))][:max(room, 0)]
            drop = np.setdiff1d(mine, keep)
            decision[drop], reason[drop] = WAITLISTED, REASON["TASK_FULL"]
