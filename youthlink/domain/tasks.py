"""Service tasks: posting, changing and cancelling them, finding them, and the rotating on-site check-in code."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyotp
from sqlalchemy import ColumnElement, Float, Integer, Select, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.config import get_settings
from youthlink.db.models import Project, Signup, Task, Team, Town
from youthlink.db.models.enums import SLOT_HOLDING, AssignmentMode, SignupStatus, TaskStatus
from youthlink.domain import audit, notifications, organizations, policies, signups
from youthlink.domain.actor import Actor
from youthlink.domain.geo import EARTH_RADIUS_KM, sql_haversine_km
from youthlink.domain.inputs import CancelTask, CreateTask, UpdateTask, window_problem
from youthlink.domain.matching import waitlist
from youthlink.domain.pagination import Page, decode_cursor, encode_cursor, keyset_after, page_size
from youthlink.domain.reads import Scope, cached
from youthlink.errors import Conflict, Forbidden, Invalid, NotFound


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


# Sign-ups whose volunteers are told when their task moves (time or place): those still in play before it starts.
TOLD_OF_CHANGES = (SignupStatus.CONFIRMED, SignupStatus.WAITLISTED, SignupStatus.APPLIED)
# Sign-ups a cancellation ends (a task someone attended is not cancelled: see cancel_task).
ENDED_BY_CANCELLATION = (SignupStatus.CONFIRMED, SignupStatus.WAITLISTED, SignupStatus.APPLIED)
ATTENDED = (SignupStatus.CHECKED_IN, SignupStatus.COMPLETED, SignupStatus.NO_SHOW)
# What makes a change "material": the volunteers are told (a new title or more slots is not worth a message).
MATERIAL = ("starts_at", "ends_at", "address", "lat", "lng")


async def _locked_task(session: AsyncSession, task_id: uuid.UUID) -> Task:
    """The task, its row locked (FOR NO KEY UPDATE: the lock a slot count's UPDATE takes, so sign-ups and this
    change wait for each other; rows that only refer to the task are not held up)."""
    task = await session.scalar(select(Task).where(Task.id == task_id).with_for_update(key_share=True)
                                .execution_options(populate_existing=True))
    if task is None:
        raise NotFound("TASK_NOT_FOUND", "任务不存在", "taskId")
    return task


async def _require_manages(session: AsyncSession, actor: Actor, task: Task) -> None:
    # The rule of createTask: the task's organization's admins (or those of an ancestor), the city's admins,
    # and the leader of the team the task is posted for.
    policies.require_manages_task(actor, await organizations.lineage(session, task.organization_id), task.team_id)


def _refuse_if_over(task: Task) -> None:
    if task.status is TaskStatus.CANCELLED:
        raise Conflict("TASK_CANCELLED", "任务已取消", "taskId")
    if task.status is TaskStatus.COMPLETED:
        raise Conflict("TASK_COMPLETED", "任务已结束", "taskId")


async def _attendance(session: AsyncSession, task_id: uuid.UUID) -> int:
    return int(await session.scalar(select(func.count()).select_from(Signup).where(
        Signup.task_id == task_id, Signup.recorded_status.in_(ATTENDED))) or 0)


def _audit_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


async def update_task(session: AsyncSession, actor: Actor, command: UpdateTask) -> Task:
    """Change the fields the command carries. A change of time or place is told to every volunteer still in
    play (`task.changed`, in this transaction); more slots go to the waitlist at once."""
    policies.require_login(actor)
    task = await _locked_task(session, command.task_id)
    await _require_manages(session, actor, task)
    _refuse_if_over(task)
    now = datetime.now(UTC)
    new: dict[str, Any] = {name: getattr(command, name) for name in command.changed() if name != "location"}
    if command.location is not None:
        new |= {"address": command.location.address, "lat": command.location.lat, "lng": command.location.lng}
    changes = {name: (getattr(task, name), value) for name, value in new.items() if getattr(task, name) != value}
    starts_at, ends_at = new.get("starts_at", task.starts_at), new.get("ends_at", task.ends_at)
    deadline = new.get("signup_deadline", task.signup_deadline)

    material = sorted(set(changes) & set(MATERIAL))
    if material:
        # The volunteers are on their way or there: a change now would reach them too late.
        if task.starts_at <= now or await _attendance(session, task.id):
            raise Conflict("TASK_STARTED", "任务已开始，不能再改时间或地点", to_field(material[0]))
    if ("starts_at" in changes or "ends_at" in changes) and starts_at <= now:
        raise Invalid("START_IN_PAST", "开始时间不能早于现在", "startsAt")
    problem = window_problem(starts_at, ends_at, deadline)
    if problem is not None:
        raise Invalid(*problem)
    if "signup_deadline" in changes and deadline is not None and task.status is TaskStatus.OPEN and deadline <= now:
        raise Invalid("INVALID_DEADLINE", "报名截止时间已过", "signupDeadline")
    if "slots" in changes and new["slots"] < task.filled_slots:
        raise Conflict("SLOTS_BELOW_FILLED", f"已有 {task.filled_slots} 人确认参加，名额不能少于此数", "slots")
    if not changes:
        return task  # what the task already says: nothing to store, nobody to tell

    before = {"startsAt": task.starts_at, "endsAt": task.ends_at, "address": task.address}
    more_slots = "slots" in changes and new["slots"] > task.slots
    for name, (_, value) in changes.items():
        setattr(task, name, value)
    await session.flush()
    audit.record(session, actor.account_id, "task.update", "task", task.id,
                 changes={to_field(name): [_audit_value(old), _audit_value(value)]
                          for name, (old, value) in sorted(changes.items())})
    if material:
        await _tell_changed(session, task, before)
    if more_slots:
        await _fill_from_waitlist(session, task, now)
    return task


def to_field(name: str) -> str:
    """The client's name of a task field (what a refusal points at)."""
    if name in ("address", "lat", "lng"):
        return "location"
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


async def _tell_changed(session: AsyncSession, task: Task, before: dict[str, Any]) -> int:
    """`task.changed` to each volunteer still in play, once per change (a change ID in the key: the same
    move made again later is news again). Urgent when the old or the new start is near."""
    rows = (await session.execute(
        select(Signup.id, Signup.volunteer_id)
        .where(Signup.task_id == task.id, Signup.status.in_(TOLD_OF_CHANGES))
        .order_by(Signup.applied_at, Signup.id)
    )).all()
    change = uuid.uuid4()
    shared = {"taskId": str(task.id),
              "oldStartsAt": before["startsAt"].isoformat(), "newStartsAt": task.starts_at.isoformat(),
              "oldEndsAt": before["endsAt"].isoformat(), "newEndsAt": task.ends_at.isoformat(),
              "oldAddress": before["address"], "newAddress": task.address}
    due = min(before["startsAt"], task.starts_at)
    told = 0
    for signup_id, volunteer_id in rows:
        told += await notifications.notify(
            session, volunteer_id=volunteer_id, kind="task.changed", payload={**shared, "signupId": str(signup_id)},
            dedupe_key=f"task.changed:{change}:{signup_id}", due_at=due)
    return told


async def _fill_from_waitlist(session: AsyncSession, task: Task, now: datetime) -> None:
    """New slots are offered as freed ones are: the matched waitlist's job, or first come's longest waiting."""
    if task.assignment_mode is AssignmentMode.MATCHED:
        await waitlist.slot_freed(session, task)
        return
    if task.status is not TaskStatus.OPEN or now >= task.starts_at:
        return
    while task.filled_slots < task.slots:
        if await signups.promote_waitlisted(session, task.id) is None:
            break
        await session.refresh(task, ["filled_slots"])


async def cancel_task(session: AsyncSession, actor: Actor, command: CancelTask) -> Task:
    """Cancel a task that nobody has attended yet: every sign-up still in play is cancelled (its slot freed,
    nobody promoted) and its volunteer told why (`task.cancelled`, in this transaction)."""
    policies.require_login(actor)
    found = await session.get(Task, command.task_id)
    if found is None:
        raise NotFound("TASK_NOT_FOUND", "任务不存在", "taskId")
    await _require_manages(session, actor, found)
    # Locks in the order the other writers take them: the slot holders, then the task (cancelSignup locks the
    # sign-up, then updates the task's count); the task, then the other sign-ups (the matcher, the waitlist).
    await session.execute(select(Signup.id).where(Signup.task_id == found.id, Signup.recorded_status.in_(SLOT_HOLDING))
                          .order_by(Signup.id).with_for_update())
    task = await _locked_task(session, found.id)
    if task.status is TaskStatus.CANCELLED:
        raise Conflict("ALREADY_CANCELLED", "任务已取消", "taskId")
    _refuse_if_over(task)
    now = datetime.now(UTC)
    if task.ends_at <= now:
        raise Conflict("TASK_ENDED", "任务已结束，不能取消", "taskId")
    if await _attendance(session, task.id):
        raise Conflict("TASK_ATTENDED", "已有志愿者签到，不能取消任务", "taskId")
    ended = (await session.execute(
        update(Signup)
        .where(Signup.task_id == task.id, Signup.status.in_(ENDED_BY_CANCELLATION))
        .values(recorded_status=SignupStatus.CANCELLED, cancelled_at=now, cancel_reason=command.reason)
        .returning(Signup.id, Signup.volunteer_id)
        .execution_options(synchronize_session=False)
    )).all()
    # Every slot holder was CONFIRMED (nobody attended) and is cancelled now: no slot is held any more.
    task.status = TaskStatus.CANCELLED
    task.filled_slots = 0
    await session.flush()
    audit.record(session, actor.account_id, "task.cancel", "task", task.id, reason=command.reason,
                 signups_cancelled=len(ended))
    for signup_id, volunteer_id in sorted(ended, key=lambda row: str(row[0])):
        await notifications.notify(
            session, volunteer_id=volunteer_id, kind="task.cancelled",
            payload={"taskId": str(task.id), "signupId": str(signup_id), "reason": command.reason},
            dedupe_key=f"task.cancelled:{signup_id}", due_at=task.starts_at)
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
