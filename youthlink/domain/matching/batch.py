"""The matching batch: every due MATCHED task's applications decided together, optimally.

    close    in a transaction of its own, committed first: each due task's current round of applications is
             closed (the task moves on to the next round), so what the batch decides cannot grow behind it
    lock     pg_advisory_xact_lock: two batches (or a batch and a promotion) never overlap
    load     the due tasks; their closed rounds' applications as a binary COPY; the applicants' facts
    build    every hard rule and score factor for every application at once (candidates.evaluate)
    solve    slots filled first, total score second (solver.solve: min-cost flow, CP-SAT where needed)
    write    under row locks (winners' volunteers, then tasks, in id order, the order sign-ups use): re-check
             slots and time clashes against what committed meanwhile; confirm the winners in their rows
             (state-guarded: `WHERE status = 'APPLIED'`); and for each task round one MatchingDecision holding
             every application's decision, score and breakdown. The others' rows are not written: an
             application whose round has a decision is WAITLISTED (or REJECTED, when listed) by Signup.status.

A task is due when it is OPEN, MATCHED, has applications to decide, and its deadline (or start) has passed or
its organization asked for matching. An application that arrives during a batch joins the next round and waits
for the next batch; one cancelled during a batch keeps its cancellation (its row says so, whatever the
decision), and a slot a cancelled winner would have taken is offered to the waitlist by a `matching.promote`
job. Re-running a batch finds no closed round undecided and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import and_, exists, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.config import get_settings
from youthlink.db.models import Signup, Task, Volunteer
from youthlink.db.models.enums import AssignmentMode, SignupStatus, TaskStatus
from youthlink.db.models.tasks import MatchingRun
from youthlink.domain import audit, outbox
from youthlink.domain.matching import candidates, decisions, scores, solver
from youthlink.domain.matching.candidates import among
from youthlink.domain.matching.decisions import CONFIRMED, REASON, REJECTED, WAITLISTED

log = logging.getLogger(__name__)
# pg_advisory_xact_lock key: two batches never overlap, whichever workers run them.
MATCHING_LOCK_KEY = 0x59_4C_4D_41  # "YLMA"


def empty_result() -> dict[str, Any]:
    return {"tasks": 0, "applications": 0, "confirmed": 0, "waitlisted": 0, "rejected": 0}


def _due(task_ids: Sequence[uuid.UUID] | None, now: datetime) -> Any:
    """OPEN MATCHED tasks whose deadline (or start) passed, or that were asked for, or named."""
    due = or_(Task.matching_requested_at.is_not(None), Task.signup_deadline <= now, Task.starts_at <= now)
    if task_ids:
        due = or_(due, Task.id.in_(list(task_ids)))
    return and_(Task.assignment_mode == AssignmentMode.MATCHED, Task.status == TaskStatus.OPEN, due)


async def close_rounds(session: AsyncSession, task_ids: Sequence[uuid.UUID] | None, now: datetime) -> int:
    """Close the current round of every due task that has applications in it: later applications join the next
    round. Committed before the batch reads, it waits for sign-ups in flight (they hold the task's row), so a
    closed round is complete and stays so."""
    in_round = exists().where(Signup.task_id == Task.id, Signup.recorded_status == SignupStatus.APPLIED,
                              Signup.matching_round == Task.matching_round)
    closed = await session.execute(
        update(Task).where(_due(task_ids, now), in_round).values(matching_round=Task.matching_round + 1)
        .execution_options(synchronize_session=False)
    )
    return int(closed.rowcount or 0)  # type: ignore[attr-defined]


async def due_tasks(session: AsyncSession, task_ids: Sequence[uuid.UUID] | None, now: datetime) -> list[Task]:
    """Due tasks with applications in closed rounds that no batch has decided."""
    undecided = exists().where(Signup.task_id == Task.id, Signup.recorded_status == SignupStatus.APPLIED,
                               Signup.matching_round >= Task.decided_round,
                               Signup.matching_round < Task.matching_round)
    query = (
        select(Task)
        .where(_due(task_ids, now), Task.decided_round < Task.matching_round, undecided)
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
    """Load the tasks' undecided applications and their volunteers' facts, check every rule, score every one."""
    settings = get_settings()
    clock = time.perf_counter()
    vocab = candidates.vocabulary(rows)
    tasks = candidates.task_table(rows, vocab, now)
    apps = await candidates.load_applications(session, rows, candidates.UNDECIDED)
    roster = candidates.Roster.of(apps.volunteer_ids)
    # The ledger's aggregation, the slowest query after the applications, runs on a second connection while this one
    # reads the rest. It sees what is committed, as a statement of this (READ COMMITTED) transaction would: the batch
    # has written nothing yet.
    async with candidates.side_session(session) as ledger_session:
        ledger = asyncio.create_task(candidates.ledger_facts(ledger_session, roster, now, settings))
        try:
            memberships = await candidates.load_memberships(session, tasks, roster)
            held = await candidates.load_held(session, roster, min(t.starts_at for t in rows),
                                              max(t.ends_at for t in rows))
            volunteers = await candidates.load_volunteers(session, roster, vocab, now, settings, ledger)
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
    """Decide the undecided applications of the due MATCHED tasks, together. Running it twice changes nothing
    more. Closes the tasks' rounds first, in a transaction of its own on a second connection."""
    now = datetime.now(UTC)
    clock = time.perf_counter()
    async with candidates.side_session(session) as closing, closing.begin():
        # Under the batches' lock: a round is never closed under a running batch's feet (nor its tasks locked
        # in another order than the batch's).
        await closing.execute(select(func.pg_advisory_xact_lock(MATCHING_LOCK_KEY)))
        await close_rounds(closing, task_ids, now)
    timings = {"close": round(time.perf_counter() - clock, 4)}
    await session.execute(select(func.pg_advisory_xact_lock(MATCHING_LOCK_KEY)))
    settings = get_settings()
    weights = scores.Weights.from_settings(settings)
    rows = await due_tasks(session, task_ids, now)
    if not rows:
        return empty_result()
    instance = await load_instance(session, rows, now)
    timings.update(instance.timings)
    clock = time.perf_counter()
    solution = solver.solve(instance.problem, exact_max_candidates=settings.matching_exact_max_candidates,
                            exact_seconds=settings.matching_exact_seconds, workers=settings.matching_exact_workers)
    timings["solve"] = round(time.perf_counter() - clock, 4)
    clock = time.perf_counter()
    tasks, apps = instance.tasks, instance.apps
    decision, reason = _decisions(apps, tasks, instance.evaluation, instance.pool, solution.chosen)
    run_id = uuid.uuid4()
    counts = await _write(session, run_id, now, instance, decision, reason, timings)
    timings["write"] = round(time.perf_counter() - clock, 4)
    result: dict[str, Any] = {
        "tasks": tasks.size, "applications": apps.size, **counts, "candidates": instance.problem.size,
        "kept": solution.kept,
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
               pool: NDArray[np.int64], chosen: NDArray[np.bool_]) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Per application: CONFIRMED / WAITLISTED / REJECTED and why."""
    n = apps.size
    decision = np.full(n, WAITLISTED, np.uint8)
    reason = np.full(n, REASON["TASK_FULL"], np.uint8)
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


def _decision_order(apps: candidates.Applications) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The applications in MatchingDecision order, (task, round) groups each sorted by sign-up id, and where each
    group starts. A sort of each small group, not of all millions by a 16-byte key."""
    key = apps.task * (int(apps.round.max()) + 1) + apps.round
    group_order = solver.by_key(key)
    key = key[group_order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    halves = np.ascontiguousarray(apps.signup_id).view(">u8").reshape(-1, 2)
    order = np.empty_like(group_order)
    for lo, hi in zip(starts.tolist(), np.r_[starts[1:], group_order.shape[0]].tolist(), strict=True):
        members = group_order[lo:hi]
        order[lo:hi] = members[np.lexsort((halves[members, 1], halves[members, 0]))]
    return order, starts


@dataclass(frozen=True)
class Entries:
    """Every application's MatchingDecision entry, in decision order, with where each task round starts."""

    order: NDArray[np.int64]
    starts: NDArray[np.int64]
    entries: NDArray[np.void]


def _entries(instance: Instance) -> Entries:
    """Every application's score and breakdown as MatchingDecision entries (the decisions filled in later)."""
    apps, volunteers, evaluation = instance.apps, instance.volunteers, instance.evaluation
    order, starts = _decision_order(apps)
    volunteer = apps.volunteer[order]
    entries = np.zeros(order.shape[0], decisions.ENTRY)
    entries["id"] = apps.signup_id[order]
    entries["units"] = evaluation.units[order]
    entries["factors"] = evaluation.permille[order]
    km = evaluation.distance_km[order]
    entries["km"] = np.where(np.isnan(km), decisions.NO_DISTANCE, np.rint(np.nan_to_num(km) * 100))
    entries["hours"] = np.rint(volunteers.recent_hours[volunteer] * 10)
    entries["attended"] = volunteers.attended[volunteer]
    entries["no_shows"] = volunteers.no_shows[volunteer]
    entries["member"] = evaluation.membership[order]
    return Entries(order, starts, entries)


async def _write(session: AsyncSession, run_id: uuid.UUID, now: datetime, instance: Instance,
                 decision: NDArray[np.uint8], reason: NDArray[np.uint8], timings: dict[str, float]
                 ) -> dict[str, int]:
    tasks, apps = instance.tasks, instance.apps
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        timings[f"write_{name}"] = round(time.perf_counter() - clock, 4)
        clock = time.perf_counter()

    # The decisions' entries take a second or two of NumPy at city scale: built in a thread while PostgreSQL
    # re-checks and confirms the winners (all but the decisions themselves, which the re-check may change).
    entries = asyncio.get_running_loop().run_in_executor(None, _entries, instance)
    if np.any(decision == CONFIRMED):
        await _recheck_winners(session, instance, np.flatnonzero(decision == CONFIRMED), decision, reason)
    lap("recheck")
    winners = np.flatnonzero(decision == CONFIRMED)
    # Only the winners' rows are written (they hold slots now); state-guarded, so a cancellation stands.
    async with _probing_by_index(session):
        landed = await session.execute(text("""
            UPDATE signups s SET status = 'CONFIRMED', decided_at = :now
            FROM unnest(CAST(:ids AS uuid[])) AS w(id)
            WHERE s.id = w.id AND s.status = 'APPLIED'
            RETURNING s.id, s.task_id
        """), {"ids": candidates.signup_uuids(apps.signup_id[winners]), "now": now})
    index = {task_id: i for i, task_id in enumerate(tasks.ids)}
    landed_per_task = np.zeros(tasks.size, np.int64)
    confirmed_ids = []
    for signup_id, task_id in landed.all():
        landed_per_task[index[uuid.UUID(int=task_id.int)]] += 1
        confirmed_ids.append(signup_id)
    await session.execute(text("""
        UPDATE tasks t SET filled_slots = t.filled_slots + c.n, matched_at = :now, matching_requested_at = NULL,
                           decided_round = greatest(t.decided_round, c.decided)
        FROM unnest(CAST(:ids AS uuid[]), CAST(:ns AS int[]), CAST(:decided AS int[])) AS c(id, n, decided)
        WHERE t.id = c.id
    """), {"ids": tasks.ids, "ns": landed_per_task.tolist(), "now": now,
           "decided": [t.matching_round for t in tasks.rows]})
    lap("winners")
    await _record_decisions(session, run_id, now, instance, await entries, decision, reason)
    lap("decisions")
    # The audit trail: each confirmation (rejections and the waitlist are in the run's MatchingDecisions).
    await session.execute(text("""
        INSERT INTO audit_log (action, entity_type, entity_id, data)
        SELECT 'signup.match', 'signup', c.id::text,
               jsonb_build_object('status', 'CONFIRMED', 'run', CAST(:run AS text))
        FROM unnest(CAST(:ids AS uuid[])) AS c(id)
    """), {"ids": confirmed_ids, "run": str(run_id)})
    # Each volunteer hears the decision: a job recorded in this transaction writes the messages after commit.
    # (Written here, the notifications' foreign keys would take a share lock on every applicant's volunteer row
    # while this transaction holds the tasks' rows: a sign-up holding its volunteer and waiting for a task
    # would deadlock with it.)
    await outbox.record_job(session, "notifications.matching_decided", run_id=str(run_id),
                            task_ids=[str(t) for t in tasks.ids])
    # Slots a winner left by cancelling while the batch ran go to the waitlist, like any cancellation.
    planned = np.bincount(apps.task[winners], minlength=tasks.size)
    for t in np.flatnonzero(landed_per_task < planned).tolist():
        await outbox.record_job(session, "matching.promote", task_id=str(tasks.ids[t]))
    lap("audit_jobs")
    return {"confirmed": int(landed_per_task.sum()), "waitlisted": int(np.count_nonzero(decision == WAITLISTED)),
            "rejected": int(np.count_nonzero(decision == REJECTED))}


@asynccontextmanager
async def _probing_by_index(session: AsyncSession) -> AsyncIterator[None]:
    """Joins in the statements inside probe the index, row by row. Given tens of thousands of ids, PostgreSQL
    otherwise hashes all the city's sign-ups (a sequential scan, spilling to disk): 1.7 s at city scale, where
    the probes take a third of that. The settings are the transaction's, restored afterwards."""
    previous = (await session.execute(text(
        "SELECT current_setting('enable_hashjoin'), current_setting('enable_mergejoin'),"
        " set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)"
    ))).one()
    yield
    # (Not on failure: the transaction is then aborted, and its rollback undoes the settings.)
    await session.execute(text("SELECT set_config('enable_hashjoin', :hash, true),"
                               " set_config('enable_mergejoin', :merge, true)"),
                          {"hash": previous[0], "merge": previous[1]})


async def _record_decisions(session: AsyncSession, run_id: uuid.UUID, now: datetime, instance: Instance,
                            prepared: Entries, decision: NDArray[np.uint8], reason: NDArray[np.uint8]) -> None:
    """One MatchingDecision per task and round decided (a round left undecided by a failed batch is decided
    with the next one, in a record of its own)."""
    apps, tasks = instance.apps, instance.tasks
    order, starts, entries = prepared.order, prepared.starts, prepared.entries
    entries["decision"], entries["reason"] = decision[order], reason[order]
    entries["units"][entries["decision"] == REJECTED] = decisions.NO_SCORE
    rows = []
    for lo, hi in zip(starts.tolist(), np.r_[starts[1:], order.shape[0]].tolist(), strict=True):
        group = entries[lo:hi]
        first = int(order[lo])
        rejected = candidates.signup_uuids(group["id"][group["decision"] == REJECTED])
        rows.append((tasks.ids[int(apps.task[first])], int(apps.round[first]), run_id, now, hi - lo, rejected,
                     group.tobytes()))
    driver = await candidates.driver_connection(session)
    await driver.executemany(
        "INSERT INTO matching_decisions (task_id, round, run_id, decided_at, applications, rejected, entries)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)", rows,
    )


async def _recheck_winners(session: AsyncSession, instance: Instance, winners: NDArray[np.int64],
                           decision: NDArray[np.uint8], reason: NDArray[np.uint8]) -> None:
    """Lock the winners' volunteers, then the tasks (the order sign-ups lock in), and demote any winner whose
    slot or time a concurrent transaction took since the batch read them."""
    apps, tasks, volunteers, evaluation = instance.apps, instance.tasks, instance.volunteers, instance.evaluation
    winner_volunteers = sorted({volunteers.ids[v] for v in apps.volunteer[winners].tolist()})
    # FOR NO KEY UPDATE: excludes sign-ups (they lock the volunteer FOR UPDATE) but not the key-share locks of
    # rows being inserted that refer to the volunteer (an earlier run's notifications): waiting for those while
    # holding some volunteers would deadlock with them.
    await session.execute(
        select(Volunteer.id).where(among(Volunteer.id, winner_volunteers)).order_by(Volunteer.id)
        .with_for_update(key_share=True)
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
            keep = apps.best_first(evaluation.units, mine)[:max(room, 0)]
            drop = np.setdiff1d(mine, keep)
            decision[drop], reason[drop] = WAITLISTED, REASON["TASK_FULL"]
