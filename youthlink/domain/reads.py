"""Batch reads for the linked graph, each scoped to what the actor may see.

Every function takes many ids at once (a DataLoader batch) and answers in a fixed number of queries, so
a client walking organization → teams → members costs the same few statements for 1 row or 100.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, literal, or_, select, tuple_, union
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from youthlink.db.models import (
    Organization,
    Project,
    ProjectPartner,
    ProjectTeam,
    ServiceRecord,
    Signup,
    Task,
    Team,
    TeamMember,
    Volunteer,
)
from youthlink.db.models.enums import TaskStatus
from youthlink.domain import organizations
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
    return await organizations.subtree(session, list(actor.admin_organization_ids))


def _task_managed_clause(managed: set[uuid.UUID] | None, actor: Actor) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = []
    if managed is None:
        return Task.id.is_not(None)
    if managed:
        clauses.append(Task.organization_id.in_(managed))
    if actor.led_team_ids:
        clauses.append(Task.team_id.in_(actor.led_team_ids))
    return or_(*clauses) if clauses else Task.id.is_(None)


async def tasks(session: AsyncSession, scope: Scope, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Task]:
    """Published tasks are public; drafts only for those who run them."""
    rows = await session.scalars(select(Task).where(Task.id.in_(ids), scope.task_visible()))
    return {row.id: row for row in rows}


async def manages_tasks(session: AsyncSession, scope: Scope, task_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    if not scope.actor.is_authenticated:
        return set()
    rows = await session.scalars(select(Task.id).where(Task.id.in_(task_ids), scope.task_managed()))
    return set(rows.all())


def _serves_with(scope: Scope, ids: Sequence[uuid.UUID]) -> Any:
    """Volunteers among `ids` who signed up for a task the actor runs, or belong to a team they manage."""
    via_tasks = (
        select(Signup.volunteer_id).join(Task, Task.id == Signup.task_id)
        .where(Signup.volunteer_id.in_(ids), scope.task_managed())
    )
    via_teams = (
        select(TeamMember.volunteer_id).join(Team, Team.id == TeamMember.team_id)
        .where(TeamMember.volunteer_id.in_(ids), scope.team_managed())
    )
    return union(via_tasks, via_teams)


async def visible_volunteer_ids(session: AsyncSession, scope: Scope, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Self, city admins, admins of an organization the volunteer serves with, leaders of their teams."""
    actor = scope.actor
    if actor.is_city_admin:
        return set(ids)
    visible = {i for i in ids if i == actor.volunteer_id}
    rest = [i for i in ids if i not in visible]
    if not rest or not actor.is_staff:
        return visible
    rows = await session.scalars(_serves_with(scope, rest))
    return visible | set(rows.all())


async def full_phone_ids(session: AsyncSession, scope: Scope, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Whose full phone number the actor may read: the person, city admins, admins of orgs they serve with."""
    actor = scope.actor
    if actor.is_city_admin:
        return set(ids)
    own = {i for i in ids if i == actor.volunteer_id}
    if not scope.managed:
        return own
    rows = await session.scalars(_serves_with(Scope(actor.without_team_roles(), scope.managed), ids))
    return own | set(rows.all())


async def volunteers(session: AsyncSession, scope: Scope, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Volunteer]:
    visible = await visible_volunteer_ids(session, scope, ids)
    return await by_id(session, Volunteer, list(visible)) if visible else {}


def _own_or_managed(actor: Actor, managed: set[uuid.UUID] | None, volunteer_col: Any) -> ColumnElement[bool]:
    clauses = [_task_managed_clause(managed, actor)]
    if actor.volunteer_id is not None:
        clauses.append(volunteer_col == actor.volunteer_id)
    return or_(*clauses)


async def signups(session: AsyncSession, scope: Scope, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Signup]:
    if not scope.actor.is_authenticated:
        return {}
    rows = await session.scalars(
        select(Signup).join(Task, Task.id == Signup.task_id)
        .where(Signup.id.in_(ids), scope.own_or_managed(Signup.volunteer_id))
    )
    return {r.id: r for r in rows}


def _records() -> Select[Any]:
    return select(ServiceRecord).outerjoin(Task, Task.id == ServiceRecord.task_id)


async def records(session: AsyncSession, scope: Scope, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ServiceRecord]:
    if not scope.actor.is_authenticated:
        return {}
    rows = await session.scalars(
        _records().where(ServiceRecord.id.in_(ids), scope.record_visible())
    )
    return {r.id: r for r in rows}


async def records_by_signup(session: AsyncSession, scope: Scope, signup_ids: Sequence[uuid.UUID]
                            ) -> dict[uuid.UUID, ServiceRecord]:
    if not scope.actor.is_authenticated:
        return {}
    rows = await session.scalars(
        _records().where(ServiceRecord.signup_id.in_(signup_ids), scope.record_visible())
    )
    return {r.signup_id: r for r in rows if r.signup_id is not None}  # (offline records have none)


@dataclass(frozen=True)
class Scope:
    """What an actor may see, computed once per request: the organizations they manage (None: all)."""

    actor: Actor
    managed: set[uuid.UUID] | None

    def task_managed(self) -> ColumnElement[bool]:
        return _task_managed_clause(self.managed, self.actor)

    def task_visible(self) -> ColumnElement[bool]:
        """Published tasks for everyone; drafts for those who run them."""
        return or_(Task.status != TaskStatus.DRAFT, self.task_managed())

    def is_self(self, volunteer_col: Any) -> ColumnElement[bool]:
        if self.actor.volunteer_id is None:
            return volunteer_col.is_(None)
        return volunteer_col == self.actor.volunteer_id  # type: ignore[no-any-return]

    def own_or_managed(self, volunteer_col: Any) -> ColumnElement[bool]:
        """Rows of the actor's own, or of tasks they run. The query must join Task."""
        return _own_or_managed(self.actor, self.managed, volunteer_col)

    def record_visible(self) -> ColumnElement[bool]:
        """Service records: the volunteer's own, and those of the organizations (or led teams' tasks) one runs.
        Offline records have no task, so the record's own organization decides (see _records: outer join)."""
        if self.managed is None:
            return ServiceRecord.id.is_not(None)
        clauses: list[ColumnElement[bool]] = []
        if self.managed:
            clauses.append(ServiceRecord.organization_id.in_(self.managed))
        if self.actor.led_team_ids:
            clauses.append(Task.team_id.in_(self.actor.led_team_ids))
        if self.actor.volunteer_id is not None:
            clauses.append(ServiceRecord.volunteer_id == self.actor.volunteer_id)
        return or_(*clauses) if clauses else ServiceRecord.id.is_(None)

    def team_managed(self) -> ColumnElement[bool]:
        clauses: list[ColumnElement[bool]] = []
        if self.managed is None:
            return Team.id.is_not(None)
        if self.managed:
            clauses.append(Team.organization_id.in_(self.managed))
        if self.actor.led_team_ids:
            clauses.append(Team.id.in_(self.actor.led_team_ids))
        return or_(*clauses) if clauses else Team.id.is_(None)


async def scope_for(session: AsyncSession, actor: Actor) -> Scope:
    return Scope(actor, await managed_org_ids(session, actor) if actor.is_authenticated else set())


@dataclass(frozen=True)
class Relation:
    """A one-to-many (or many-to-many) list under many parents, fetched for all of them at once.

    `parent` is the column holding the parent's id (on the model or a joined link table); `base` builds the
    select of the model, with any joins and the row visibility for the request's scope.
    """

    model: Any
    parent: Any
    order: tuple[Any, ...]
    cursor_kinds: tuple[type, ...]
    base: Callable[[Scope], Select[Any]]
    descending: bool = False


async def relation_pages(
    session: AsyncSession, scope: Scope, relation: Relation, parent_ids: Sequence[uuid.UUID],
    first: int, after: str | None,
) -> dict[uuid.UUID, Page[Any]]:
    """First `first` children of every parent: one windowed query plus one count query, whatever the page size."""
    parent_key = relation.parent.label("parent_key")
    filtered = relation.base(scope).where(relation.parent.in_(parent_ids))
    counted = filtered.with_only_columns(parent_key).subquery("counted")
    counts: dict[uuid.UUID, int] = dict((await session.execute(
        select(counted.c.parent_key, func.count()).group_by(counted.c.parent_key)
    )).all())
    if after:
        values = decode_cursor(after, relation.cursor_kinds)
        filtered = filtered.where(keyset_after(relation.order, values, relation.descending))
    ordering = [c.desc() for c in relation.order] if relation.descending else list(relation.order)
    row_number = func.row_number().over(partition_by=relation.parent, order_by=ordering).label("rn")
    windowed = filtered.add_columns(parent_key, row_number).subquery("windowed")
    entity = aliased(relation.model, windowed)
    rows = (await session.execute(
        select(windowed.c.parent_key, entity).where(windowed.c.rn <= first + 1)
        .order_by(windowed.c.parent_key, windowed.c.rn)
    )).all()
    grouped: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for parent_id, row in rows:
        grouped[parent_id].append(row)
    order_attrs = [c.key for c in relation.order]
    pages: dict[uuid.UUID, Page[Any]] = {}
    for parent_id in parent_ids:
        shown = grouped.get(parent_id, [])[:first]
        pages[parent_id] = Page(
            items=shown,
            cursors=[encode_cursor([getattr(item, a) for a in order_attrs]) for item in shown],
            has_next=len(grouped.get(parent_id, [])) > first,
            total_count=int(counts.get(parent_id, 0)),
        )
    return pages


def _project_links() -> Any:
    """Organization ↔ project, owned or partnered."""
    return union(
        select(Project.owner_organization_id.label("org_id"), Project.id.label("project_id")),
        select(ProjectPartner.organization_id.label("org_id"), ProjectPartner.project_id.label("project_id")),
    ).subquery("project_links")


_LINKS = _project_links()
BY_NAME = (str, uuid.UUID)
BY_TIME = (datetime, uuid.UUID)

RELATIONS: dict[str, Relation] = {
    "organization.children": Relation(
        Organization, Organization.parent_id, (Organization.name, Organization.id), BY_NAME,
        lambda scope: select(Organization)),
    "organization.teams": Relation(
        Team, Team.organization_id, (Team.name, Team.id), BY_NAME, lambda scope: select(Team)),
    "organization.projects": Relation(
        Project, _LINKS.c.org_id, (Project.name, Project.id), BY_NAME,
        lambda scope: select(Project).join(_LINKS, _LINKS.c.project_id == Project.id)),
    "organization.tasks": Relation(
        Task, Task.organization_id, (Task.starts_at, Task.id), BY_TIME,
        lambda scope: select(Task).where(scope.task_visible()), descending=True),
    "team.members": Relation(
        TeamMember, TeamMember.team_id, (TeamMember.joined_at, TeamMember.volunteer_id), BY_TIME,
        lambda scope: select(TeamMember).join(Team, Team.id == TeamMember.team_id)
        .where(or_(scope.team_managed(), scope.is_self(TeamMember.volunteer_id)))),
    "team.projects": Relation(
        Project, ProjectTeam.team_id, (Project.name, Project.id), BY_NAME,
        lambda scope: select(Project).join(ProjectTeam, ProjectTeam.project_id == Project.id)),
    "team.tasks": Relation(
        Task, Task.team_id, (Task.starts_at, Task.id), BY_TIME,
        lambda scope: select(Task).where(scope.task_visible()), descending=True),
    "project.teams": Relation(
        Team, ProjectTeam.project_id, (Team.name, Team.id), BY_NAME,
        lambda scope: select(Team).join(ProjectTeam, ProjectTeam.team_id == Team.id)),
    "project.tasks": Relation(
        Task, Task.project_id, (Task.starts_at, Task.id), BY_TIME,
        lambda scope: select(Task).where(scope.task_visible()), descending=True),
    "task.signups": Relation(
        Signup, Signup.task_id, (Signup.applied_at, Signup.id), BY_TIME,
        lambda scope: select(Signup).join(Task, Task.id == Signup.task_id)
        .where(scope.own_or_managed(Signup.volunteer_id))),
    "task.serviceRecords": Relation(
        ServiceRecord, ServiceRecord.task_id, (ServiceRecord.started_at, ServiceRecord.id), BY_TIME,
        lambda scope: _records().where(scope.record_visible())),
    "volunteer.signups": Relation(
        Signup, Signup.volunteer_id, (Signup.applied_at, Signup.id), BY_TIME,
        lambda scope: select(Signup).join(Task, Task.id == Signup.task_id)
        .where(scope.own_or_managed(Signup.volunteer_id)), descending=True),
    "volunteer.serviceRecords": Relation(
        ServiceRecord, ServiceRecord.volunteer_id, (ServiceRecord.started_at, ServiceRecord.id), BY_TIME,
        lambda scope: _records().where(scope.record_visible()), descending=True),
    "volunteer.teams": Relation(
        TeamMember, TeamMember.volunteer_id, (TeamMember.joined_at, TeamMember.team_id), BY_TIME,
        lambda scope: select(TeamMember).join(Team, Team.id == TeamMember.team_id)
        .where(or_(scope.team_managed(), scope.is_self(TeamMember.volunteer_id)))),
}


async def member_counts(session: AsyncSession, team_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = await session.execute(
        select(TeamMember.team_id, func.count()).where(TeamMember.team_id.in_(team_ids)).group_by(TeamMember.team_id)
    )
    return {r[0]: int(r[1]) for r in rows}


async def memberships(session: AsyncSession, keys: Sequence[tuple[uuid.UUID, uuid.UUID]]
                      ) -> dict[tuple[uuid.UUID, uuid.UUID], TeamMember]:
    rows = await session.scalars(select(TeamMember).where(tuple_(TeamMember.team_id, TeamMember.volunteer_id)
                                                          .in_(list(keys))))
    return {(m.team_id, m.volunteer_id): m for m in rows}


async def project_organizations(session: AsyncSession, project_ids: Sequence[uuid.UUID]
                                ) -> dict[uuid.UUID, list[tuple[Organization, str]]]:
    """Each project's owner first, then its partners."""
    owner_role = literal("OWNER").label("role")
    partner_role = literal("PARTNER").label("role")
    links = union(
        select(Project.id.label("project_id"), Project.owner_organization_id.label("org_id"), owner_role),
        select(ProjectPartner.project_id, ProjectPartner.organization_id, partner_role),
    ).subquery("links")
    rows = await session.execute(
        select(links.c.project_id, links.c.role, Organization)
        .join(Organization, Organization.id == links.c.org_id)
        .where(links.c.project_id.in_(project_ids))
        .order_by(links.c.project_id, links.c.role, Organization.name)  # OWNER sorts before PARTNER
    )
    found: dict[uuid.UUID, list[tuple[Organization, str]]] = defaultdict(list)
    for project_id, role, org in rows:
        found[project_id].append((org, role))
    return {pid: found.get(pid, []) for pid in project_ids}


@dataclass(frozen=True)
class Totals:
    hours: float
    volunteers: int


async def _totals(session: AsyncSession, key: Any, ids: Sequence[uuid.UUID], *joins: Any) -> dict[uuid.UUID, Totals]:
    query = select(key, func.coalesce(func.sum(LEDGER.c.hours), 0), func.count(func.distinct(LEDGER.c.volunteer_id)))
    for target, on in joins:
        query = query.join(target, on)
    rows = await session.execute(query.where(key.in_(ids)).group_by(key))
    found = {r[0]: Totals(float(r[1]), int(r[2])) for r in rows}
    return {i: found.get(i, Totals(0.0, 0)) for i in ids}


LEDGER = ledger_entries().subquery("ledger")


async def organization_totals(session: AsyncSession, org_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Totals]:
    """Approved hours (with adjustments) and distinct volunteers recorded by each organization itself."""
    return await _totals(session, LEDGER.c.organization_id, org_ids)


async def project_totals(session: AsyncSession, project_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Totals]:
    return await _totals(session, Task.project_id, project_ids, (Task, Task.id == LEDGER.c.task_id))


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
