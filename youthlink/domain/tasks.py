"""Service tasks: posting them, finding them, and the rotating on-site check-in code."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyotp
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.config import get_settings
from youthlink.db.models import Project, Task, Team, Town
from youthlink.db.models.enums import TaskStatus
from youthlink.domain import audit, organizations, policies
from youthlink.domain.actor import Actor
from youthlink.domain.geo import sql_haversine_km, sql_within_km
from youthlink.domain.inputs import CreateTask
from youthlink.domain.pagination import Page, decode_cursor, encode_cursor, keyset_after, page_size
from youthlink.domain.reads import Scope
from youthlink.errors import Forbidden, Invalid, NotFound


async def create_task(session: AsyncSession, actor: Actor, command: CreateTask) -> Task:
    lineage = await organizations.lineage(session, command.organization_id)
    policies.require_login(actor)
    if not policies.manages_task(actor, lineage, command.team_id):
        # The refusal points at what the client sent (there is no task ID yet).
        raise Forbidden("FORBIDDEN", "无权在该组织发布任务", "organizationId")
    if command.project_id is not None and await session.get(Project, command.project_id) is None:
        raise NotFound("PROJECT_NOT_FOUND", "项目不存在", "projectId")
    if command.town_id is not None and await session.get(Town, command.town_id) is None:
        raise NotFound("TOWN_NOT_FOUND", "镇街不存在", "townId")
    if command.team_id is not None:
        team = await session.get(Team, command.team_id)
        if team is None:
            raise NotFound("TEAM_NOT_FOUND", "队伍不存在", "teamId")
        if team.organization_id not in await organizations.subtree(session, [command.organization_id]):
            raise Invalid("TEAM_NOT_IN_ORGANIZATION", "该队伍不属于此组织", "teamId")

    now = datetime.now(UTC)
    if command.ends_at <= now:
        # A task that already happened (补录): closed to sign-ups, the organization adds participants.
        status = TaskStatus.CLOSED
    elif command.publish:
        status = TaskStatus.OPEN
    else:
        status = TaskStatus.DRAFT
    if status is TaskStatus.OPEN and command.signup_deadline is not None and command.signup_deadline <= now:
        raise Invalid("INVALID_DEADLINE", "报名截止时间已过", "signupDeadline")

    task = Task(
        organization_id=command.organization_id,
        project_id=command.project_id,
        team_id=command.team_id,
        town_id=command.town_id,
        title=command.title,
        description=command.description,
        address=command.location.address,
        lat=command.location.lat,
        lng=command.location.lng,
        starts_at=command.starts_at,
        ends_at=command.ends_at,
        signup_deadline=command.signup_deadline,
        slots=command.slots,
        filled_slots=0,
        required_skills=command.required_skills,
        min_age=command.min_age,
        assignment_mode=command.assignment_mode,
        checkin_radius_m=command.checkin_radius_m or get_settings().checkin_default_radius_m,
        checkin_secret=pyotp.random_base32(),
        status=status,
        created_by=actor.account_id,
    )
    session.add(task)
    await session.flush()
    audit.record(session, actor.account_id, "task.create", "task", task.id, status=status.value)
    return task


def _totp(task: Task) -> pyotp.TOTP:
    return pyotp.TOTP(task.checkin_secret, interval=get_settings().checkin_code_seconds)


def current_checkin_code(task: Task, at: datetime | None = None) -> str:
    return _totp(task).at(at or datetime.now(UTC))


def checkin_code_matches(task: Task, code: str, at: datetime) -> bool:
    # A few steps of grace: a code read off the screen just before it rotates still works.
    return _totp(task).verify(code.strip(), for_time=at, valid_window=get_settings().checkin_code_grace_steps)


@dataclass(frozen=True)
class TaskFilter:
    statuses: tuple[TaskStatus, ...] = ()
    near: tuple[float, float, float] | None = None  # lat, lng, radius km
    skills: tuple[str, ...] | None = None
    starts_after: datetime | None = None
    starts_before: datetime | None = None
    organization_id: uuid.UUID | None = None
    project_id: uuid.UUID | None = None
    town_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None


@dataclass(frozen=True)
class TaskRow:
    task: Task
    distance_km: float | None


def _filtered(query: Select[Any], scope: Scope, f: TaskFilter) -> Select[Any]:
    # Drafts are the organization's business: only those who run the task see them.
    query = query.where(scope.task_visible())
    if f.statuses:
        query = query.where(Task.status.in_(f.statuses))
    if f.near is not None:
        lat, lng, radius = f.near
        query = query.where(sql_within_km(Task.lat, Task.lng, lat, lng, radius))
    if f.skills is not None:
        # Tasks the given skills qualify for: every required skill is among them.
        query = query.where(Task.required_skills.contained_by(list(f.skills)))
    if f.starts_after is not None:
        query = query.where(Task.starts_at >= f.starts_after)
    if f.starts_before is not None:
        query = query.where(Task.starts_at < f.starts_before)
    for column, value in (
        (Task.organization_id, f.organization_id),
        (Task.project_id, f.project_id),
        (Task.town_id, f.town_id),
        (Task.team_id, f.team_id),
    ):
        if value is not None:
            query = query.where(column == value)
    return query


def validate_filter(f: TaskFilter) -> None:
    if f.near is not None and not 0 < f.near[2] <= 200:
        raise Invalid("INVALID_RADIUS", "搜索半径须在 0 到 200 公里之间", "filter.near.radiusKm")
    if f.near is not None and not (-90 <= f.near[0] <= 90 and -180 <= f.near[1] <= 180):
        raise Invalid("INVALID_LOCATION", "坐标超出范围", "filter.near")
    if f.skills is not None and len(f.skills) > 20:
        raise Invalid("TOO_MANY_SKILLS", "技能过滤最多 20 项", "filter.skills")


async def search_tasks(
    session: AsyncSession, scope: Scope, f: TaskFilter, first: int | None, after: str | None
) -> Page[TaskRow]:
    validate_filter(f)
    limit = page_size(first)
    distance = sql_haversine_km(Task.lat, Task.lng, f.near[0], f.near[1]) if f.near else None
    columns: list[Any] = [Task]
    if distance is not None:
        columns.append(distance.label("distance_km"))
    query = _filtered(select(*columns), scope, f)
    if after:
        starts_at, task_id = decode_cursor(after, (datetime, uuid.UUID))
        query = query.where(keyset_after((Task.starts_at, Task.id), (starts_at, task_id)))
    query = query.order_by(Task.starts_at, Task.id).limit(limit + 1)
    rows = (await session.execute(query)).all()
    total = await session.scalar(_filtered(select(func.count()).select_from(Task), scope, f))
    items = [TaskRow(row[0], float(row[1]) if distance is not None else None) for row in rows[:limit]]
    return Page(
        items=items,
        cursors=[encode_cursor((r.task.starts_at, r.task.id)) for r in items],
        has_next=len(rows) > limit,
        total_count=int(total or 0),
    )
