"""Service tasks: posting them, finding them, and the rotating on-site check-in code."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyotp
from sqlalchemy import ColumnElement, Float, Integer, Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.config import get_settings
from youthlink.db.models import Project, Task, Team, Town
from youthlink.db.models.enums import TaskStatus
from youthlink.domain import audit, organizations, policies
from youthlink.domain.actor import Actor
from youthlink.domain.geo import EARTH_RADIUS_KM, sql_haversine_km
from youthlink.domain.inputs import CreateTask
from youthlink.domain.pagination import Page, decode_cursor, encode_cursor, keyset_after, page_size
from youthlink.domain.reads import Scope, cached
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
    task: Any  # a row of the task's columns (reads like the Task entity)
    distance_km: float | None


# The search's statements are built once for each shape of search (which filters are set, the viewer's
# visibility, a cursor or not) and run with the values as parameters. Building the distance expression alone
# took longer than running the query, and a statement kept for reuse also keeps its SQLAlchemy cache key.
TASKS = Task.__table__  # Core: no ORM result machinery on the hot path


def _param(name: str, type_: Any) -> Any:
    return bindparam(name, type_=type_)


def _conditions(scope: Scope, f: TaskFilter) -> list[ColumnElement[bool]]:
    # Drafts are the organization's business: only those who run the task see them.
    conditions = [scope.task_visible()]
    if f.statuses:
        # Inline (`status IN ('OPEN')`, from the enum, never from text): the planner then matches the partial
        # index on open tasks' coordinates even in the generic plan of a prepared statement.
        conditions.append(TASKS.c.status.in_(bindparam("statuses", list(f.statuses), type_=TASKS.c.status.type,
                                                    expanding=True, literal_execute=True)))
    if f.near is not None:
        # A bounding box the (lat, lng) indexes can use, then the exact distance (as geo.sql_within_km).
        conditions += [
            TASKS.c.lat.between(_param("lat_min", Float), _param("lat_max", Float)),
            TASKS.c.lng.between(_param("lng_min", Float), _param("lng_max", Float)),
            _distance() <= _param("radius_km", Float),
        ]
    if f.skills is not None:
        # Tasks the given skills qualify for: every required skill is among them.
        conditions.append(TASKS.c.required_skills.contained_by(_param("skills", TASKS.c.required_skills.type)))
    if f.starts_after is not None:
        conditions.append(TASKS.c.starts_at >= _param("starts_after", TASKS.c.starts_at.type))
    if f.starts_before is not None:
        conditions.append(TASKS.c.starts_at < _param("starts_before", TASKS.c.starts_at.type))
    for column, value in (
        (TASKS.c.organization_id, f.organization_id),
        (TASKS.c.project_id, f.project_id),
        (TASKS.c.town_id, f.town_id),
        (TASKS.c.team_id, f.team_id),
    ):
        if value is not None:
            conditions.append(column == _param(column.key, column.type))
    return conditions


def _distance() -> ColumnElement[float]:
    at_lat: Any = _param("at_lat", Float)
    at_lng: Any = _param("at_lng", Float)
    return sql_haversine_km(TASKS.c.lat, TASKS.c.lng, at_lat, at_lng)


def _statements(scope: Scope, f: TaskFilter, paged: bool) -> tuple[Select[Any], Select[Any] | None]:
    """The page statement for this shape of search, built on first use, and the count statement a later page
    needs. A first page counts in the same statement (`count(*) OVER ()`, over every match before the LIMIT);
    after a cursor the window would only count what follows it, so the count is its own statement."""

    def build() -> tuple[Select[Any], Select[Any] | None]:
        conditions = _conditions(scope, f)
        columns: list[Any] = [TASKS]
        if f.near is not None:
            columns.append(_distance().label("distance_km"))
        page = select(*columns).where(*conditions)
        count = None
        if paged:
            after = (_param("after_starts_at", TASKS.c.starts_at.type), _param("after_id", TASKS.c.id.type))
            page = page.where(keyset_after((TASKS.c.starts_at, TASKS.c.id), after))
            count = select(func.count()).select_from(TASKS).where(*conditions)
        else:
            page = page.add_columns(func.count().over().label("total_count"))
        return page.order_by(TASKS.c.starts_at, TASKS.c.id).limit(_param("limit", Integer)), count

    key = ("search_tasks", scope.shape(), f.statuses, f.near is not None, f.skills is not None,
           f.starts_after is not None, f.starts_before is not None, f.organization_id is not None,
           f.project_id is not None, f.town_id is not None, f.team_id is not None, paged)
    return cached(key, build)


def _parameters(f: TaskFilter) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if f.near is not None:
        lat, lng, radius = f.near
        dlat = math.degrees(radius / EARTH_RADIUS_KM)
        dlng = dlat / max(math.cos(math.radians(lat)), 1e-6)
        values |= {"at_lat": lat, "at_lng": lng, "radius_km": radius, "lat_min": lat - dlat, "lat_max": lat + dlat,
                   "lng_min": lng - dlng, "lng_max": lng + dlng}
    if f.skills is not None:
        values["skills"] = list(f.skills)
    for name in ("starts_after", "starts_before", "organization_id", "project_id", "town_id", "team_id"):
        if (value := getattr(f, name)) is not None:
            values[name] = value
    return values


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
    page, count = _statements(scope, f, paged=bool(after))
    values = scope.parameters() | _parameters(f)
    paging: dict[str, Any] = {"limit": limit + 1}
    if after:
        paging["after_starts_at"], paging["after_id"] = decode_cursor(after, (datetime, uuid.UUID))
    rows = (await session.execute(page, values | paging)).all()
    if count is not None:
        total = await session.scalar(count, values)
    else:
        total = rows[0].total_count if rows else 0
    items = [TaskRow(row, row.distance_km if f.near is not None else None) for row in rows[:limit]]
    return Page(
        items=items,
        cursors=[encode_cursor((r.task.starts_at, r.task.id)) for r in items],
        has_next=len(rows) > limit,
        total_count=int(total or 0),
    )
