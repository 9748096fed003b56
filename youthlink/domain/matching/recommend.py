"""Recommendations and invitations, with the batch's own rules and score.

    recommended_volunteers   for an under-filled task: eligible volunteers near it who have not applied
    recommended_tasks        for a volunteer ("for you"): open tasks they may sign up for, invitations first
    invite_volunteers        the organization invites recommended volunteers (idempotent per task and volunteer)
    set_match_radius         the organization limits how far from home a task's volunteers may live

The hard rules an index can answer (skills, age, consent, distance, time clashes, not applied yet) filter in SQL;
the survivors are scored by candidates.evaluate, exactly as the batch would score their application now.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from youthlink.config import get_settings
from youthlink.db.models import Signup, Task, Volunteer
from youthlink.db.models.enums import ACTIVE, SLOT_HOLDING, AssignmentMode, TaskStatus
from youthlink.db.models.tasks import TaskInvitation
from youthlink.domain import audit, notifications, organizations, policies
from youthlink.domain.accounts import ADULT_AGE
from youthlink.domain.actor import Actor
from youthlink.domain.geo import sql_within_km
from youthlink.domain.matching import candidates, scores
from youthlink.domain.pagination import page_size
from youthlink.errors import Conflict, Invalid, NotFound

MAX_INVITATIONS = 100


@dataclass(frozen=True)
class VolunteerRecommendation:
    volunteer_id: uuid.UUID
    name: str
    skills: list[str]
    total_hours: Decimal
    distance_km: float | None
    score: Decimal
    explanation: scores.ExplanationView
    invited: bool


@dataclass(frozen=True)
class TaskRecommendation:
    task: Task
    distance_km: float | None
    score: Decimal
    explanation: scores.ExplanationView
    invited: bool


@dataclass(frozen=True)
class InviteResult:
    invited: list[uuid.UUID]
    skipped: list[tuple[uuid.UUID, str]]  # volunteer, reason code


SKIP_MESSAGES = {
    **scores.REASONS,
    "VOLUNTEER_NOT_FOUND": "志愿者不存在",
    "ALREADY_APPLIED": "已报名该任务",
    "QUOTA_REACHED": "已达召集名额",
}


def years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _clash(volunteer_id: Any, task: type[Task] | Task) -> ColumnElement[bool]:
    """The volunteer holds a slot of another task overlapping `task` (a row, or the Task entity in a query)."""
    other = aliased(Task)
    return (
        select(Signup.id).join(other, other.id == Signup.task_id)
        .where(Signup.volunteer_id == volunteer_id, Signup.recorded_status.in_(SLOT_HOLDING), other.id != task.id,
               other.starts_at < task.ends_at, other.ends_at > task.starts_at)
        .exists()
    )


def _view(stored: dict[str, object], units: int) -> scores.ExplanationView:
    return scores.describe(stored, scores.points(units))


async def _manageable_task(session: AsyncSession, actor: Actor, task_id: uuid.UUID) -> Task:
    task = await session.get(Task, task_id)
    if task is None:
        raise NotFound("TASK_NOT_FOUND", "任务不存在", "taskId")
    lineage = await organizations.lineage(session, task.organization_id)
    policies.require_manages_task(actor, lineage, task.team_id)
    return task


async def _evaluate(session: AsyncSession, task_rows: Sequence[Task], volunteer_ids: Sequence[uuid.UUID],
                    pairs_of: str, now: datetime, with_clashes: bool
                    ) -> tuple[candidates.Pairs, candidates.Evaluation, candidates.Volunteers]:
    """Score one task against many volunteers (`pairs_of="volunteers"`) or one volunteer against many tasks."""
    settings = get_settings()
    vocab = candidates.vocabulary(task_rows)
    tasks = candidates.task_table(task_rows, vocab, now)
    volunteers = await candidates.load_volunteers(session, candidates.Roster.of(volunteer_ids), vocab, now, settings)
    memberships = await candidates.load_memberships(session, tasks, volunteers)
    if with_clashes:
        held = await candidates.load_held(session, volunteers, min(t.starts_at for t in task_rows),
                                          max(t.ends_at for t in task_rows), only=volunteer_ids)
    else:  # the SQL already left out every clash
        held = candidates.Held(*(np.zeros(0, np.int64) for _ in range(3)))
    count = volunteers.size if pairs_of == "volunteers" else tasks.size
    applying_now = np.full(count, candidates.seconds(now), np.int64)
    if pairs_of == "volunteers":
        pairs = candidates.Pairs(np.zeros(count, np.int64), np.arange(count, dtype=np.int64), applying_now)
    else:
        pairs = candidates.Pairs(np.arange(count, dtype=np.int64), np.zeros(count, np.int64), applying_now)
    weights = scores.Weights.from_settings(settings)
    return pairs, candidates.evaluate(pairs, tasks, volunteers, memberships, held, weights, settings), volunteers


async def recommended_volunteers(session: AsyncSession, actor: Actor, task_id: uuid.UUID, first: int | None
                                 ) -> list[VolunteerRecommendation]:
    """Eligible volunteers near the task who have not applied to it, best score first (for those who run it)."""
    size = page_size(first)
    task = await _manageable_task(session, actor, task_id)
    now = datetime.now(UTC)
    if task.status is not TaskStatus.OPEN or now >= task.ends_at or size == 0:
        return []
    settings = get_settings()
    start_day = task.starts_at.astimezone(UTC).date()
    radius = task.match_radius_km or settings.matching_recommend_radius_km
    query = select(Volunteer.id).where(
        Volunteer.home_lat.is_not(None),
        sql_within_km(Volunteer.home_lat, Volunteer.home_lng, task.lat, task.lng, radius),
        or_(Volunteer.birth_date <= years_before(start_day, ADULT_AGE), Volunteer.guardian_consent_at.is_not(None)),
        ~select(Signup.id).where(Signup.task_id == task.id, Signup.volunteer_id == Volunteer.id).exists(),
        ~_clash(Volunteer.id, task),
    )
    if task.required_skills:
        query = query.where(Volunteer.skills.contains(list(task.required_skills)))
    if task.min_age is not None:
        query = query.where(Volunteer.birth_date <= years_before(start_day, task.min_age))
    ids = list((await session.scalars(query)).all())
    if not ids:
        return []
    weights = scores.Weights.from_settings(settings)
    pairs, evaluation, volunteers = await _evaluate(session, [task], ids, "volunteers", now, with_clashes=False)
    eligible = np.flatnonzero(evaluation.candidate)
    best = eligible[np.lexsort((eligible, -evaluation.units[eligible]))][:size]
    chosen = [volunteers.ids[int(pairs.volunteer[i])] for i in best.tolist()]
    people = {row.id: row for row in await session.execute(
        select(Volunteer.id, Volunteer.name, Volunteer.skills, Volunteer.total_hours).where(Volunteer.id.in_(chosen))
    )}
    invited = set((await session.scalars(
        select(TaskInvitation.volunteer_id).where(TaskInvitation.task_id == task.id,
                                                  TaskInvitation.volunteer_id.in_(chosen))
    )).all())
    out = []
    for i, volunteer_id in zip(best.tolist(), chosen, strict=True):
        person = people[volunteer_id]
        distance = evaluation.distance_km[i]
        out.append(VolunteerRecommendation(
            volunteer_id=volunteer_id, name=person.name, skills=list(person.skills), total_hours=person.total_hours,
            distance_km=None if np.isnan(distance) else round(float(distance), 3),
            score=scores.points(evaluation.units[i]),
            explanation=_view(candidates.explain(evaluation, volunteers, int(pairs.volunteer[i]), i, weights,
                                                 "RECOMMENDED", ""), int(evaluation.units[i])),
            invited=volunteer_id in invited,
        ))
    return out


async def recommended_tasks(session: AsyncSession, actor: Actor, first: int | None) -> list[TaskRecommendation]:
    """Open tasks the volunteer may sign up for, near home: invitations first, then by score."""
    size = page_size(first)
    volunteer_id = policies.require_volunteer(actor)
    volunteer = await session.get(Volunteer, volunteer_id)
    if volunteer is None:
        raise NotFound("VOLUNTEER_NOT_FOUND", "志愿者不存在", "volunteerId")
    now = datetime.now(UTC)
    settings = get_settings()
    query = select(Task).where(
        Task.status == TaskStatus.OPEN, Task.starts_at > now,
        or_(Task.signup_deadline.is_(None), Task.signup_deadline > now),
        Task.required_skills.contained_by(list(volunteer.skills)),
        or_(Task.assignment_mode == AssignmentMode.MATCHED, Task.filled_slots < Task.slots),
        ~select(Signup.id).where(Signup.task_id == Task.id, Signup.volunteer_id == volunteer.id,
                                 Signup.status.in_(ACTIVE)).exists(),
        ~_clash(volunteer.id, Task),  # type: ignore[arg-type]
    )
    if volunteer.home_lat is not None and volunteer.home_lng is not None:
        query = query.where(sql_within_km(Task.lat, Task.lng, volunteer.home_lat, volunteer.home_lng,
                                          settings.matching_recommend_radius_km))
    rows = list((await session.scalars(query.order_by(Task.starts_at, Task.id))).all())
    if not rows or size == 0:
        return []
    weights = scores.Weights.from_settings(settings)
    pairs, evaluation, volunteers = await _evaluate(session, rows, [volunteer.id], "tasks", now, with_clashes=False)
    invited_ids = set((await session.scalars(
        select(TaskInvitation.task_id).where(TaskInvitation.volunteer_id == volunteer.id)
    )).all())
    eligible = np.flatnonzero(evaluation.candidate)
    invited = np.array([rows[i].id in invited_ids for i in eligible.tolist()], np.bool_)
    best = eligible[np.lexsort((eligible, -evaluation.units[eligible], ~invited))][:size]
    return [
        TaskRecommendation(
            task=rows[i], distance_km=None if np.isnan(evaluation.distance_km[i]) else
            round(float(evaluation.distance_km[i]), 3), score=scores.points(evaluation.units[i]),
            explanation=_view(candidates.explain(evaluation, volunteers, int(pairs.volunteer[i]), i, weights,
                                                 "RECOMMENDED", ""), int(evaluation.units[i])),
            invited=rows[i].id in invited_ids,
        )
        for i in best.tolist()
    ]


async def invite_volunteers(session: AsyncSession, actor: Actor, task_id: uuid.UUID,
                            volunteer_ids: Sequence[uuid.UUID], quota: int | None = None) -> InviteResult:
    """Invite volunteers to apply; each must be eligible and not applied yet. Inviting twice changes nothing.
    With a quota, the first `quota` eligible volunteers (in the given order) are invited, the rest skipped."""
    if not volunteer_ids:
        raise Invalid("NO_VOLUNTEERS", "请选择要邀请的志愿者", "volunteerIds")
    if len(volunteer_ids) > MAX_INVITATIONS:
        raise Invalid("TOO_MANY_VOLUNTEERS", f"一次最多邀请 {MAX_INVITATIONS} 人", "volunteerIds")
    task = await _manageable_task(session, actor, task_id)
    now = datetime.now(UTC)
    closes = task.signup_deadline or task.ends_at
    if task.status is not TaskStatus.OPEN or now >= closes:
        raise Conflict("SIGNUP_CLOSED", "该任务已不接受报名，不能邀请", "taskId")
    wanted = list(dict.fromkeys(volunteer_ids))
    found = set((await session.scalars(select(Volunteer.id).where(Volunteer.id.in_(wanted)))).all())
    applied = set((await session.scalars(
        select(Signup.volunteer_id).where(Signup.task_id == task.id, Signup.volunteer_id.in_(wanted),
                                          Signup.status.in_(ACTIVE))
    )).all())
    skipped: list[tuple[uuid.UUID, str]] = []
    for volunteer_id in wanted:
        if volunteer_id not in found:
            skipped.append((volunteer_id, "VOLUNTEER_NOT_FOUND"))
        elif volunteer_id in applied:
            skipped.append((volunteer_id, "ALREADY_APPLIED"))
    checked = [v for v in wanted if v in found and v not in applied]
    invited: list[uuid.UUID] = []
    if checked:
        pairs, evaluation, volunteers = await _evaluate(session, [task], checked, "volunteers", now,
                                                        with_clashes=True)
        for i in range(pairs.volunteer.shape[0]):
            volunteer_id = volunteers.ids[int(pairs.volunteer[i])]
            code = int(evaluation.reason[i])
            if code != candidates.OK:
                skipped.append((volunteer_id, candidates.REASON_CODES[code]))
            else:
                invited.append(volunteer_id)
        if quota is not None and len(invited) > quota:
            order = {v: n for n, v in enumerate(wanted)}
            invited.sort(key=order.__getitem__)
            skipped += [(v, "QUOTA_REACHED") for v in invited[quota:]]
            invited = invited[:quota]
    if invited:
        new = (await session.scalars(
            insert(TaskInvitation)
            .values([{"id": uuid.uuid4(), "task_id": task.id, "volunteer_id": v, "invited_by": actor.account_id}
                     for v in invited])
            .on_conflict_do_nothing(index_elements=[TaskInvitation.task_id, TaskInvitation.volunteer_id])
            .returning(TaskInvitation.volunteer_id)
        )).all()
        for volunteer_id in new:
            audit.record(session, actor.account_id, "task.invite", "task", task.id, volunteer_id=volunteer_id)
            await notifications.notify(session, volunteer_id=volunteer_id, kind="task.invited",
                                       payload={"taskId": str(task.id)},
                                       dedupe_key=f"task.invited:{task.id}:{volunteer_id}")
    return InviteResult(invited=invited, skipped=skipped)


async def set_match_radius(session: AsyncSession, actor: Actor, task_id: uuid.UUID, radius_km: float | None) -> Task:
    """Limit (or, with None, stop limiting) how far from home the task's volunteers may live."""
    if radius_km is not None and not 0 < radius_km <= 200:
        raise Invalid("INVALID_RADIUS", "距离限制须在 0 到 200 公里之间", "radiusKm")
    task = await _manageable_task(session, actor, task_id)
    if task.status in (TaskStatus.CANCELLED, TaskStatus.COMPLETED):
        raise Conflict("TASK_NOT_OPEN", "该任务已结束或已取消", "taskId")
    task.match_radius_km = radius_km
    await session.flush()
    audit.record(session, actor.account_id, "task.match_radius", "task", task.id, radius_km=radius_km)
    return task


def skip_message(code: str) -> str:
    return SKIP_MESSAGES.get(code, code)
