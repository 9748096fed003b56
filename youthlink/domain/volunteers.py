"""Volunteers as seen by those who coordinate them: search with filters, scoped to what the viewer may see."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.config import get_settings
from youthlink.db.models import ServiceRecord, Signup, Task, Team, TeamMember, Volunteer
from youthlink.db.models.enums import RecordStatus
from youthlink.domain import policies
from youthlink.domain.pagination import Page, page_size
from youthlink.domain.reads import Scope, page_by_name
from youthlink.errors import Forbidden, Invalid

MAX_SKILLS = 20


@dataclass(frozen=True)
class VolunteerFilter:
    team_id: uuid.UUID | None = None
    town_id: uuid.UUID | None = None
    skills: tuple[str, ...] = ()
    active_since: date | None = None  # at least one approved service record since this day


def _visible(scope: Scope) -> Any:
    """Volunteers a coordinator may list: those serving with what they run (all, for city admins)."""
    if scope.managed is None:
        return Volunteer.id.is_not(None)
    via_tasks = exists().where(Signup.volunteer_id == Volunteer.id, Signup.task_id == Task.id, scope.task_managed())
    via_teams = exists().where(TeamMember.volunteer_id == Volunteer.id, TeamMember.team_id == Team.id,
                               scope.team_managed())
    return or_(via_tasks, via_teams)


def _filtered(query: Select[Any], scope: Scope, f: VolunteerFilter) -> Select[Any]:
    query = query.where(_visible(scope))
    if f.team_id is not None:
        query = query.where(exists().where(TeamMember.volunteer_id == Volunteer.id, TeamMember.team_id == f.team_id))
    if f.town_id is not None:
        query = query.where(Volunteer.town_id == f.town_id)
    if f.skills:
        query = query.where(Volunteer.skills.contains(list(f.skills)))
    if f.active_since is not None:
        since = datetime.combine(f.active_since, time(), ZoneInfo(get_settings().city_timezone))
        query = query.where(exists().where(
            ServiceRecord.volunteer_id == Volunteer.id, ServiceRecord.status == RecordStatus.APPROVED,
            ServiceRecord.started_at >= since,
        ))
    return query


async def search(session: AsyncSession, scope: Scope, f: VolunteerFilter, first: int | None, after: str | None
                 ) -> Page[Volunteer]:
    """Volunteers by name, for city admins, organization admins and team leaders."""
    policies.require_login(scope.actor)
    if not scope.actor.is_staff:
        raise Forbidden("FORBIDDEN", "仅管理员和队长可查询志愿者")
    if len(f.skills) > MAX_SKILLS:
        raise Invalid("TOO_MANY_SKILLS", f"技能过滤最多 {MAX_SKILLS} 项", "filter.skills")
    return await page_by_name(session, _filtered(select(Volunteer), scope, f), Volunteer, page_size(first), after)
