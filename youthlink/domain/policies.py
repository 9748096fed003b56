"""Who may do what: pure functions over an Actor and the facts a service has loaded.

Services call these, so GraphQL, REST and jobs enforce the same rules.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from youthlink.domain.actor import Actor
from youthlink.errors import Forbidden, Unauthenticated


def require_login(actor: Actor) -> None:
    if not actor.is_authenticated and not actor.is_city_admin:
        raise Unauthenticated("UNAUTHENTICATED", "请先登录")


def manages_organization(actor: Actor, lineage: Iterable[uuid.UUID]) -> bool:
    """An org admin manages their organization and all its descendants; `lineage` is the org and its ancestors."""
    return actor.is_city_admin or not actor.admin_organization_ids.isdisjoint(lineage)


def manages_task(actor: Actor, org_lineage: Iterable[uuid.UUID], team_id: uuid.UUID | None) -> bool:
    return manages_organization(actor, org_lineage) or (team_id is not None and team_id in actor.led_team_ids)


def require_manages_organization(actor: Actor, lineage: Iterable[uuid.UUID]) -> None:
    require_login(actor)
    if not manages_organization(actor, lineage):
        raise Forbidden("FORBIDDEN", "无权管理该组织", "organizationId")


def require_manages_task(actor: Actor, org_lineage: Iterable[uuid.UUID], team_id: uuid.UUID | None) -> None:
    require_login(actor)
    if not manages_task(actor, org_lineage, team_id):
        raise Forbidden("FORBIDDEN", "无权管理该任务", "taskId")


def require_city_admin(actor: Actor) -> None:
    require_login(actor)
    if not actor.is_city_admin:
        raise Forbidden("FORBIDDEN", "仅市级管理员可查看")


def require_volunteer(actor: Actor) -> uuid.UUID:
    require_login(actor)
    if actor.volunteer_id is None:
        raise Forbidden("NOT_A_VOLUNTEER", "该账号未注册为志愿者")
    return actor.volunteer_id


def sees_personal_data(actor: Actor, volunteer_id: uuid.UUID, served_org_lineages: Iterable[uuid.UUID]) -> bool:
    """Full phone numbers: the person, city admins, and admins of an organization they serve with."""
    return actor.volunteer_id == volunteer_id or manages_organization(actor, served_org_lineages)


def stats_audience(actor: Actor) -> str:
    """Whose statistics an actor sees: 'city' (city admins), 'organization' (org admins: their organizations with
    all their children) or 'volunteer' (their own)."""
    require_login(actor)
    if actor.is_city_admin:
        return "city"
    if actor.admin_organization_ids:
        return "organization"
    if actor.volunteer_id is not None:
        return "volunteer"
    raise Forbidden("FORBIDDEN", "无权查看统计")
