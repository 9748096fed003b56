"""Batch reads for the linked graph, each scoped to what the actor may see.

Every function takes many ids at once (a DataLoader batch) and answers in a fixed number of queries, so
a client walking organization → teams → members costs the same few statements for 1 row or 100.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from youthlink.db.models import (
    Organization,
    Project,
    ProjectPartner,
    ServiceRecord,
    Signup,
    Task,
    Team,
    TeamMember,
    Volunteer,
)
from youthlink.db.models.enums import TaskStatus
from youthlink.domain import organizations, policies
from youthlink.domain.actor import Actor
from youthlink.domain.hours import ledger_entries
from youthlink.domain.pagination import Page, decode_cursor, encode_cursor, keyset_after

M = TypeVar("M")


async def by_id(session: AsyncSession, model: type[M], ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, M]:
    rows = await session.scalars(select(model).where(model.id.in_(ids)))  # type: ignore[attr-defined]
    return {row.id: row for row in rows}  # type: ignore[attr-defined]


async def managed_org_ids(session: AsyncSession, actor: Actor) -> set[uuid.UUID] | None:
    """Organizations the actor administers, with all their descendants; None means every organization."""
    if actor.is_city_admin:
        return None
    roots = list(actor.admin_organization_ids)
    if not roots:
        return set()
    tree = select(Organization.id).where(Organization.id.in_(roots)).cte("managed", recursive=True)
    tree = tree.union_all(select(Organization.id).join(tree, Organization.parent_id == tree.c.id))
    return set((await session.scalars(select(tree.c.id))).all())


def _task_managed_clause(managed: set[uuid.UUID] | None, actor: Actor) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = []
    if managed is None:
        return Task.id.is_not(None)
    if managed:
        clauses.append(Task.organization_id.in_(managed))
    if actor.led_team_ids:
        clauses.append(Task.team_id.in_(actor.led_team_ids))
    return or_(*clauses) if clauses else Task.id.is_(None)


async def tasks(session: AsyncSession, actor: Actor, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Task]:
    """Published tasks are public; drafts only for those who run them."""
    found = await by_id(session, Task, ids)
    drafts = [t for t in found.values() if t.status is TaskStatus.DRAFT]
    if drafts:
        lineage = await organizations.lineages(session, list({t.organization_id for t in drafts}))
        for task in drafts:
            if not policies.manages_task(actor, lineage.get(task.organization_id, []), task.team_id):
                del found[task.id]
    return found


async def manages_tasks(session: AsyncSession, actor: Actor, task_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    if not actor.is_authenticated:
        return set()
    managed = await managed_org_ids(session, actor)
    rows = await session.scalars(select(Task.id).where(Task.id.in_(task_ids), _task_managed_clause(managed, actor)))
    return set(rows.all())


async def visible_volunteer_ids(session: AsyncSession, actor: Actor, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Self, city admins, admins of an organization the volunteer serves with, leaders of their teams."""
    if actor.is_city_admin:
        return set(ids)
    visible = {i for i in ids if i == actor.volunteer_id}
    rest = [i for i in ids if i not in visible]
    if not rest or not actor.is_staff:
        return visible
    managed = await managed_org_ids(session, actor) or set()
    via_tasks = (
        select(Signup.volunteer_id)
        .join(Task, Task.id == Signup.task_id)
        .where(Signup.volunteer_id.in_(rest), _task_managed_clause(managed, actor))
    )
    team_clause = [TeamMember.team_id.in_(actor.led_team_ids)] if actor.led_team_ids else []
    if managed:
        team_clause.append(Team.organization_id.in_(managed))
    queries: list[Select[Any]] = [via_tasks]
    if team_clause:
        queries.append(
            select(TeamMember.volunteer_id)
            .join(Team, Team.id == TeamMember.team_id)
            .where(TeamMember.volunteer_id.in_(rest), or_(*team_clause))
        )
    rows = await session.scalars(union(*queries))
    return visible | set(rows.all())


async def full_phone_ids(session: AsyncSession, actor: Actor, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Whose full phone number the actor may read: the person, city admins, admins of orgs they serve with."""
    if actor.is_city_admin:
        return set(ids)
    own = {i for i in ids if i == actor.volunteer_id}
    managed = await managed_org_ids(session, actor)
    if not managed:
        return own
    served = await session.scalars(
        union(
            select(Signup.volunteer_id).join(Task, Task.id == Signup.task_id)
            .where(Signup.volunteer_id.in_(ids), Task.organization_id.in_(managed)),
            select(TeamMember.volunteer_id).join(Team, Team.id == TeamMember.team_id)
            .where(TeamMember.volunteer_id.in_(ids), Team.organization_id.in_(managed)),
        )
    )
    return own | set(served.all())


async def volunteers(session: AsyncSession, actor: Actor, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Volunteer]:
    visible = await visible_volunteer_ids(session, actor, ids)
    return await by_id(session, Volunteer, list(visible)) if visible else {}


def _own_or_managed(actor: Actor, managed: set[uuid.UUID] | None, volunteer_col: Any) -> ColumnElement[bool]:
    clauses = [_task_managed_clause(managed, actor)]
    if actor.volunteer_id is not None:
        clauses.append(volunteer_col == actor.volunteer_id)
    return or_(*clauses)


async def signups(session: AsyncSession, actor: Actor, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Signup]:
    if not actor.is_authenticated:
        return {}
    managed = await managed_org_ids(session, actor)
    rows = await session.scalars(
        select(Signup).join(Task, Task.id == Signup.task_id)
        .where(Signup.id.in_(ids), _own_or_managed(actor, managed, Signup.volunteer_id))
    )
    return {r.id: r for r in rows}


async def records(session: AsyncSession, actor: Actor, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ServiceRecord]:
    if not actor.is_authenticated:
        return {}
    managed = await managed_org_ids(session, actor)
    rows = await session.scalars(
        select(ServiceRecord).join(Task, Task.id == ServiceRecord.task_id)
        .where(ServiceRecord.id.in_(ids), _own_or_managed(actor, managed, ServiceRecord.volunteer_id))
    )
    return {r.id: r for r in rows}


async def records_by_signup(session: AsyncSession, actor: Actor, signup_ids: Sequence[uuid.UUID]
                            ) -> dict[uuid.UUID, ServiceRecord]:
    if not actor.is_authenticated:
        return {}
    managed = await managed_org_ids(session, actor)
    rows = await session.scalars(
        select(ServiceRecord).join(Task, Task.id == ServiceRecord.task_id)
        .where(ServiceRecord.signup_id.in_(signup_ids), _own_or_managed(actor, managed, ServiceRecord.volunteer_id))
    )
    return {r.signup_id: r for r in rows if r.signup_id is not None}  # (offline records have none)


@dataclass(frozen=True)
class ChildQuery:
    """A one-to-many list under many parents: `base` selects the model, `parent` names its parent column."""

    model: Any
    parent: Any
    order: tuple[Any, ...]
    cursor_kinds: tuple[type, ...]
    descending: bool = False


async def child_pages(
    session: AsyncSession, spec: ChildQuery, base: Select[Any], parent_ids: Sequence[uuid.UUID],
    first: int, after: str | None,
) -> dict[uuid.UUID, Page[Any]]:
    """First `first` children of every parent, in one windowed query plus one count query."""
    filtered = base.where(spec.parent.in_(parent_ids))
    counts = await _counts(session, filtered, spec)
    if after:
        values = decode_cursor(after, spec.cursor_kinds)
        filtered = filtered.where(keyset_after(spec.order, values, spec.descending))
    ordering = [c.desc() for c in spec.order] if spec.descending else list(spec.order)
    row_number = func.row_number().over(partition_by=spec.parent, order_by=ordering).label("rn")
    windowed = filtered.add_columns(row_number).subquery("windowed")
    entity = aliased(spec.model, windowed)
    rows = (await session.execute(
        select(entity).where(windowed.c.rn <= first + 1).order_by(windowed.c.rn)
    )).scalars().all()
    grouped: dict[uuid.UUID, list[Any]] = defaultdict(list)
    parent_attr = spec.parent.key
    for row in rows:
        grouped[getattr(row, parent_attr)].append(row)
    pages: dict[uuid.UUID, Page[Any]] = {}
    order_attrs = [c.key for c in spec.order]
    for parent_id in parent_ids:
        items = grouped.get(parent_id, [])
        shown = items[:first]
        pages[parent_id] = Page(
            items=shown,
            cursors=[encode_cursor([getattr(item, a) for a in order_attrs]) for item in shown],
            has_next=len(items) > first,
            total_count=int(counts.get(parent_id, 0)),
        )
    return pages


async def _counts(session: AsyncSession, filtered: Select[Any], spec: ChildQuery) -> dict[uuid.UUID, int]:
    sub = filtered.with_only_columns(spec.parent).subquery("counted")
    rows = await session.execute(select(sub.c[spec.parent.key], func.count()).group_by(sub.c[spec.parent.key]))
    return {r[0]: int(r[1]) for r in rows}


TEAMS_BY_ORG = ChildQuery(Team, Team.organization_id, (Team.name, Team.id), (str, uuid.UUID))
SIGNUPS_BY_TASK = ChildQuery(Signup, Signup.task_id, (Signup.applied_at, Signup.id), (datetime, uuid.UUID))
SIGNUPS_BY_VOLUNTEER = ChildQuery(Signup, Signup.volunteer_id, (Signup.applied_at, Signup.id), (datetime, uuid.UUID),
                                  descending=True)
RECORDS_BY_VOLUNTEER = ChildQuery(ServiceRecord, ServiceRecord.volunteer_id,
                                  (ServiceRecord.started_at, ServiceRecord.id), (datetime, uuid.UUID), descending=True)


async def teams_of(session: AsyncSession, org_ids: Sequence[uuid.UUID], first: int, after: str | None
                   ) -> dict[uuid.UUID, Page[Team]]:
    return await child_pages(session, TEAMS_BY_ORG, select(Team), org_ids, first, after)


async def member_counts(session: AsyncSession, team_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = await session.execute(
        select(TeamMember.team_id, func.count()).where(TeamMember.team_id.in_(team_ids)).group_by(TeamMember.team_id)
    )
    return {r[0]: int(r[1]) for r in rows}


async def projects_of(session: AsyncSession, org_ids: Sequence[uuid.UUID], first: int
                      ) -> dict[uuid.UUID, Page[Project]]:
    """Projects an organization owns or partners in."""
    links = union(
        select(Project.owner_organization_id.label("org_id"), Project.id.label("project_id"))
        .where(Project.owner_organization_id.in_(org_ids)),
        select(ProjectPartner.organization_id, ProjectPartner.project_id)
        .where(ProjectPartner.organization_id.in_(org_ids)),
    ).subquery("links")
    row_number = func.row_number().over(partition_by=links.c.org_id, order_by=(Project.name, Project.id)).label("rn")
    windowed = select(links.c.org_id, Project, row_number).join(Project, Project.id == links.c.project_id).subquery()
    entity = aliased(Project, windowed)
    rows = (await session.execute(
        select(windowed.c.org_id, entity).where(windowed.c.rn <= first + 1).order_by(windowed.c.rn)
    )).all()
    counted = await session.execute(select(links.c.org_id, func.count()).group_by(links.c.org_id))
    counts: dict[uuid.UUID, int] = {r[0]: int(r[1]) for r in counted}
    grouped: dict[uuid.UUID, list[Project]] = defaultdict(list)
    for org_id, project in rows:
        grouped[org_id].append(project)
    return {
        org_id: Page(
            items=grouped[org_id][:first],
            cursors=[encode_cursor((p.name, p.id)) for p in grouped[org_id][:first]],
            has_next=len(grouped[org_id]) > first,
            total_count=int(counts.get(org_id, 0)),
        )
        for org_id in org_ids
    }


@dataclass(frozen=True)
class Totals:
    hours: float
    volunteers: int


async def organization_totals(session: AsyncSession, org_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Totals]:
    """Approved hours and distinct volunteers on each organization's own tasks."""
    entries = ledger_entries().subquery("entries")
    rows = await session.execute(
        select(Task.organization_id, func.coalesce(func.sum(entries.c.hours), 0),
               func.count(func.distinct(entries.c.volunteer_id)))
        .join(Task, Task.id == entries.c.task_id)
        .where(Task.organization_id.in_(org_ids))
        .group_by(Task.organization_id)
    )
    found = {r[0]: Totals(float(r[1]), int(r[2])) for r in rows}
    return {org_id: found.get(org_id, Totals(0.0, 0)) for org_id in org_ids}




async def organizations_page(session: AsyncSession, first: int, after: str | None,
                             kind: str | None = None, parent_id: uuid.UUID | None = None) -> Page[Organization]:
    query = select(Organization)
    if kind is not None:
        query = query.where(Organization.kind == kind)
    if parent_id is not None:
        query = query.where(Organization.parent_id == parent_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    if after:
        name, org_id = decode_cursor(after, (str, uuid.UUID))
        query = query.where(keyset_after((Organization.name, Organization.id), (name, org_id)))
    rows = list((await session.scalars(query.order_by(Organization.name, Organization.id).limit(first + 1))).all())
    shown = rows[:first]
    return Page(items=shown, cursors=[encode_cursor((o.name, o.id)) for o in shown], has_next=len(rows) > first,
                total_count=int(total or 0))


async def towns(session: AsyncSession) -> list[Any]:
    from youthlink.db.models import Town

    return list((await session.scalars(select(Town).order_by(Town.kind.desc(), Town.code))).all())
