"""Batch reads for the linked graph, each scoped to what the actor may see.

Every function takes many ids at once (a DataLoader batch) and answers in a fixed number of queries, so
a client walking organization → teams → members costs the same few statements for 1 row or 100.

These are the API's hot read paths, so they select columns (Core rows with the models' attribute names),
not ORM entities: a row of a model's columns reads like the entity and costs about half as much to load.
Nothing here is ever written back.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    any_,
    bindparam,
    false,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
    union,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.db.models import (
    Account,
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
from youthlink.db.models.tasks import signup_status
from youthlink.domain import organizations
from youthlink.domain.actor import Actor
from youthlink.domain.hours import ledger_entries
from youthlink.domain.pagination import Page, decode_cursor, encode_cursor, keyset_after

# The tables, for Core statements: a select naming ORM attributes goes through the ORM's result machinery
# (about a third more per statement) even when it returns plain rows.
TASKS, SIGNUPS, RECORDS, TEAMS, MEMBERS = (m.__table__ for m in (Task, Signup, ServiceRecord, Team, TeamMember))


def _signups() -> Select[Any]:
    """Sign-up rows whose `status` is what the sign-up is (Signup.status), not only what its row recorded."""
    return select(*(c for c in SIGNUPS.c if c.name != "status"), signup_status(SIGNUPS).label("status"))
ORGANIZATIONS, PROJECTS, PROJECT_TEAMS, PARTNERS, ACCOUNTS = (
    m.__table__ for m in (Organization, Project, ProjectTeam, ProjectPartner, Account))

M = TypeVar("M")
S = TypeVar("S")
_BY_ID: dict[type, Select[Any]] = {}


def columns(model: type[M]) -> Select[Any]:
    """A select of the model's columns (rows, not entities)."""
    return select(model.__table__)  # type: ignore[attr-defined]


async def by_id(session: AsyncSession, model: type[M], ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """Rows of the model's columns by id; the statement is built once per model."""
    statement = _BY_ID.get(model)
    if statement is None:
        statement = _BY_ID[model] = columns(model).where(
            any_of(model.__table__.c.id, "ids"))  # type: ignore[attr-defined]
    rows = await session.execute(statement, {"ids": list(ids)})
    return {row.id: row for row in rows}


# What a statement compares with the viewer: named parameters (see Scope.parameters), never values written into
# the statement, so that statements built once per shape of scope serve every viewer with that shape.
def _orgs(managed: set[uuid.UUID]) -> Any:
    return bindparam("scope_orgs", sorted(managed), type_=UUIDS)


def _teams(actor: Actor) -> Any:
    return bindparam("scope_teams", sorted(actor.led_team_ids), type_=UUIDS)


def _volunteer(actor: Actor) -> Any:
    return bindparam("scope_volunteer", actor.volunteer_id, type_=PG_UUID(as_uuid=True))


UUIDS = ARRAY(PG_UUID(as_uuid=True))


def any_of(column: Any, name: str) -> ColumnElement[bool]:
    """`column = ANY(:name)`, one array parameter: the statement reads the same for 1 id or 100, so the driver
    and the server prepare and plan it once (an IN list writes a placeholder per id: a new statement for
    every length)."""
    return column == any_(bindparam(name, type_=ARRAY(column.type)))  # type: ignore[no-any-return]


_STATEMENTS: dict[Hashable, Any] = {}
_MAX_STATEMENTS = 512


def cached(key: Hashable, build: Callable[[], S]) -> S:
    """A statement built once for `key` (which must name everything it depends on but the parameters)."""
    found = _STATEMENTS.get(key)
    if found is None:
        if len(_STATEMENTS) >= _MAX_STATEMENTS:
            _STATEMENTS.clear()
        found = _STATEMENTS[key] = build()
    return found  # type: ignore[no-any-return]


async def managed_org_ids(session: AsyncSession, actor: Actor) -> set[uuid.UUID] | None:
    """Organizations the actor administers, with all their descendants; None means every organization."""
    if actor.is_city_admin:
        return None
    return await organizations.subtree(session, list(actor.admin_organization_ids))


def _task_managed_clause(managed: set[uuid.UUID] | None, actor: Actor) -> ColumnElement[bool]:
    # Constant answers are true()/false(), which SQLAlchemy folds away: `status <> 'DRAFT' OR false` is sent
    # as `status <> 'DRAFT'`, a condition the planner can match to an index.
    clauses: list[ColumnElement[bool]] = []
    if managed is None:
        return true()
    if managed:
        clauses.append(TASKS.c.organization_id == any_(_orgs(managed)))
    if actor.led_team_ids:
        clauses.append(TASKS.c.team_id == any_(_teams(actor)))
    return or_(*clauses) if clauses else false()


async def tasks(session: AsyncSession, scope: Scope, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """Published tasks are public; drafts only for those who run them."""
    statement = cached(("tasks", scope.shape()), lambda: select(TASKS).where(
        any_of(TASKS.c.id, "ids"), scope.task_visible()))
    rows = await session.execute(statement, scope.parameters() | {"ids": list(ids)})
    return {row.id: row for row in rows}


async def manages_tasks(session: AsyncSession, scope: Scope, task_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    if not scope.actor.is_authenticated:
        return set()
    rows = await session.scalars(select(TASKS.c.id).where(TASKS.c.id.in_(task_ids), scope.task_managed()))
    return set(rows.all())


def _serves_with(scope: Scope, ids: Sequence[uuid.UUID]) -> Any:
    """Volunteers among `ids` who signed up for a task the actor runs, or belong to a team they manage."""
    via_tasks = (
        select(SIGNUPS.c.volunteer_id).join(TASKS, TASKS.c.id == SIGNUPS.c.task_id)
        .where(SIGNUPS.c.volunteer_id.in_(ids), scope.task_managed())
    )
    via_teams = (
        select(MEMBERS.c.volunteer_id).join(TEAMS, TEAMS.c.id == MEMBERS.c.team_id)
        .where(MEMBERS.c.volunteer_id.in_(ids), scope.team_managed())
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


async def volunteers(session: AsyncSession, scope: Scope, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    visible = await visible_volunteer_ids(session, scope, ids)
    return await by_id(session, Volunteer, list(visible)) if visible else {}


def _own_or_managed(actor: Actor, managed: set[uuid.UUID] | None, volunteer_col: Any) -> ColumnElement[bool]:
    clauses = [_task_managed_clause(managed, actor)]
    if actor.volunteer_id is not None:
        clauses.append(volunteer_col == _volunteer(actor))
    return or_(*clauses)


async def signups(session: AsyncSession, scope: Scope, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    if not scope.actor.is_authenticated:
        return {}
    rows = await session.execute(
        _signups().join(TASKS, TASKS.c.id == SIGNUPS.c.task_id)
        .where(SIGNUPS.c.id.in_(ids), scope.own_or_managed(SIGNUPS.c.volunteer_id))
    )
    return {r.id: r for r in rows}


def _records() -> Select[Any]:
    return select(RECORDS).outerjoin(TASKS, TASKS.c.id == RECORDS.c.task_id)


async def records(session: AsyncSession, scope: Scope, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    if not scope.actor.is_authenticated:
        return {}
    rows = await session.execute(
        _records().where(RECORDS.c.id.in_(ids), scope.record_visible())
    )
    return {r.id: r for r in rows}


async def records_by_signup(session: AsyncSession, scope: Scope, signup_ids: Sequence[uuid.UUID]
                            ) -> dict[uuid.UUID, Any]:
    if not scope.actor.is_authenticated:
        return {}
    rows = await session.execute(
        _records().where(RECORDS.c.signup_id.in_(signup_ids), scope.record_visible())
    )
    return {r.signup_id: r for r in rows if r.signup_id is not None}  # (offline records have none)


@dataclass(frozen=True)
class Scope:
    """What an actor may see, computed once per request: the organizations they manage (None: all).

    Its clauses compare with the actor's values through named parameters (scope_orgs, scope_teams,
    scope_volunteer), and their form depends only on `shape()`: a statement built from one scope runs for any
    other scope of the same shape with that scope's `parameters()` (see `cached`). A clause must never write
    an actor's value into the statement itself, or a statement kept for reuse would carry it to other viewers.
    """

    actor: Actor
    managed: set[uuid.UUID] | None

    def shape(self) -> tuple[bool, ...]:
        """What the clauses' form depends on."""
        return (self.actor.is_authenticated, self.managed is None, bool(self.managed),
                bool(self.actor.led_team_ids), self.actor.volunteer_id is not None)

    def parameters(self) -> dict[str, Any]:
        """The values of the clauses' named parameters."""
        return {"scope_orgs": sorted(self.managed or ()), "scope_teams": sorted(self.actor.led_team_ids),
                "scope_volunteer": self.actor.volunteer_id}

    def task_managed(self) -> ColumnElement[bool]:
        return _task_managed_clause(self.managed, self.actor)

    def task_visible(self) -> ColumnElement[bool]:
        """Published tasks for everyone; drafts for those who run them."""
        return or_(TASKS.c.status != TaskStatus.DRAFT, self.task_managed())

    def is_self(self, volunteer_col: Any) -> ColumnElement[bool]:
        if self.actor.volunteer_id is None:
            return false()  # (the volunteer columns are never null)
        return volunteer_col == _volunteer(self.actor)  # type: ignore[no-any-return]

    def own_or_managed(self, volunteer_col: Any) -> ColumnElement[bool]:
        """Rows of the actor's own, or of tasks they run. The query must join Task."""
        return _own_or_managed(self.actor, self.managed, volunteer_col)

    def record_visible(self) -> ColumnElement[bool]:
        """Service records: the volunteer's own, and those of the organizations (or led teams' tasks) one runs.
        Offline records have no task, so the record's own organization decides (see _records: outer join)."""
        if self.managed is None:
            return true()
        clauses: list[ColumnElement[bool]] = []
        if self.managed:
            clauses.append(RECORDS.c.organization_id == any_(_orgs(self.managed)))
        if self.actor.led_team_ids:
            clauses.append(TASKS.c.team_id == any_(_teams(self.actor)))
        if self.actor.volunteer_id is not None:
            clauses.append(RECORDS.c.volunteer_id == _volunteer(self.actor))
        return or_(*clauses) if clauses else false()

    def team_managed(self) -> ColumnElement[bool]:
        clauses: list[ColumnElement[bool]] = []
        if self.managed is None:
            return true()
        if self.managed:
            clauses.append(TEAMS.c.organization_id == any_(_orgs(self.managed)))
        if self.actor.led_team_ids:
            clauses.append(TEAMS.c.id == any_(_teams(self.actor)))
        return or_(*clauses) if clauses else false()


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


def _relation_statements(scope: Scope, relation: Relation, paged: bool) -> tuple[Select[Any] | None, Select[Any]]:
    """The count and page statements of a relation for a shape of scope; parents, sizes and cursors are
    parameters (parent_ids, rows, after_0...). A first page carries each parent's count in a window over all
    its rows (`count(*) OVER (PARTITION BY parent)`): one statement. After a cursor the rows left are fewer
    than the count, so it takes a statement of its own."""

    def build() -> tuple[Select[Any] | None, Select[Any]]:
        parent_key = relation.parent.label("parent_key")
        filtered = relation.base(scope).where(any_of(relation.parent, "parent_ids"))
        count = None
        extra: list[Any] = []
        if paged:
            counted = filtered.with_only_columns(parent_key).subquery("counted")
            count = select(counted.c.parent_key, func.count()).group_by(counted.c.parent_key)
            after = [bindparam(f"after_{i}", type_=column.type) for i, column in enumerate(relation.order)]
            filtered = filtered.where(keyset_after(relation.order, after, relation.descending))
        else:
            extra.append(func.count().over(partition_by=relation.parent).label("total_count"))
        ordering = [c.desc() for c in relation.order] if relation.descending else list(relation.order)
        row_number = func.row_number().over(partition_by=relation.parent, order_by=ordering).label("rn")
        windowed = filtered.add_columns(parent_key, row_number, *extra).subquery("windowed")
        page = (select(windowed).where(windowed.c.rn <= bindparam("rows", type_=Integer))
                .order_by(windowed.c.parent_key, windowed.c.rn))
        return count, page

    return cached(("relation", id(relation), scope.shape(), paged), build)


async def relation_pages(
    session: AsyncSession, scope: Scope, relation: Relation, parent_ids: Sequence[uuid.UUID],
    first: int, after: str | None,
) -> dict[uuid.UUID, Page[Any]]:
    """First `first` children of every parent, with each parent's count: one windowed statement (two after a
    cursor), whatever the page size and the number of parents."""
    count, page = _relation_statements(scope, relation, paged=bool(after))
    parameters = scope.parameters() | {"parent_ids": list(parent_ids)}
    paging = {"rows": first + 1}
    if after:
        paging |= {f"after_{i}": value for i, value in enumerate(decode_cursor(after, relation.cursor_kinds))}
    rows = (await session.execute(page, parameters | paging)).all()
    grouped: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for row in rows:  # the model's columns, with parent_key, rn (and total_count on a first page)
        grouped[row.parent_key].append(row)
    if count is not None:
        counts: dict[uuid.UUID, int] = dict((await session.execute(count, parameters)).all())
    else:
        counts = {parent: children[0].total_count for parent, children in grouped.items()}
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
        select(PROJECTS.c.owner_organization_id.label("org_id"), PROJECTS.c.id.label("project_id")),
        select(PARTNERS.c.organization_id.label("org_id"), PARTNERS.c.project_id.label("project_id")),
    ).subquery("project_links")


_LINKS = _project_links()
BY_NAME = (str, uuid.UUID)
BY_TIME = (datetime, uuid.UUID)

RELATIONS: dict[str, Relation] = {
    "organization.children": Relation(
        Organization, ORGANIZATIONS.c.parent_id, (ORGANIZATIONS.c.name, ORGANIZATIONS.c.id), BY_NAME,
        lambda scope: select(ORGANIZATIONS)),
    "organization.teams": Relation(
        Team, TEAMS.c.organization_id, (TEAMS.c.name, TEAMS.c.id), BY_NAME, lambda scope: select(TEAMS)),
    "organization.projects": Relation(
        Project, _LINKS.c.org_id, (PROJECTS.c.name, PROJECTS.c.id), BY_NAME,
        lambda scope: select(PROJECTS).join(_LINKS, _LINKS.c.project_id == PROJECTS.c.id)),
    "organization.tasks": Relation(
        Task, TASKS.c.organization_id, (TASKS.c.starts_at, TASKS.c.id), BY_TIME,
        lambda scope: select(TASKS).where(scope.task_visible()), descending=True),
    "team.members": Relation(
        TeamMember, MEMBERS.c.team_id, (MEMBERS.c.joined_at, MEMBERS.c.volunteer_id), BY_TIME,
        lambda scope: select(MEMBERS).join(TEAMS, TEAMS.c.id == MEMBERS.c.team_id)
        .where(or_(scope.team_managed(), scope.is_self(MEMBERS.c.volunteer_id)))),
    "team.projects": Relation(
        Project, PROJECT_TEAMS.c.team_id, (PROJECTS.c.name, PROJECTS.c.id), BY_NAME,
        lambda scope: select(PROJECTS).join(PROJECT_TEAMS, PROJECT_TEAMS.c.project_id == PROJECTS.c.id)),
    "team.tasks": Relation(
        Task, TASKS.c.team_id, (TASKS.c.starts_at, TASKS.c.id), BY_TIME,
        lambda scope: select(TASKS).where(scope.task_visible()), descending=True),
    "project.teams": Relation(
        Team, PROJECT_TEAMS.c.project_id, (TEAMS.c.name, TEAMS.c.id), BY_NAME,
        lambda scope: select(TEAMS).join(PROJECT_TEAMS, PROJECT_TEAMS.c.team_id == TEAMS.c.id)),
    "project.tasks": Relation(
        Task, TASKS.c.project_id, (TASKS.c.starts_at, TASKS.c.id), BY_TIME,
        lambda scope: select(TASKS).where(scope.task_visible()), descending=True),
    "task.signups": Relation(
        Signup, SIGNUPS.c.task_id, (SIGNUPS.c.applied_at, SIGNUPS.c.id), BY_TIME,
        lambda scope: _signups().join(TASKS, TASKS.c.id == SIGNUPS.c.task_id)
        .where(scope.own_or_managed(SIGNUPS.c.volunteer_id))),
    "task.serviceRecords": Relation(
        ServiceRecord, RECORDS.c.task_id, (RECORDS.c.started_at, RECORDS.c.id), BY_TIME,
        lambda scope: _records().where(scope.record_visible())),
    "volunteer.signups": Relation(
        Signup, SIGNUPS.c.volunteer_id, (SIGNUPS.c.applied_at, SIGNUPS.c.id), BY_TIME,
        lambda scope: _signups().join(TASKS, TASKS.c.id == SIGNUPS.c.task_id)
        .where(scope.own_or_managed(SIGNUPS.c.volunteer_id)), descending=True),
    "volunteer.serviceRecords": Relation(
        ServiceRecord, RECORDS.c.volunteer_id, (RECORDS.c.started_at, RECORDS.c.id), BY_TIME,
        lambda scope: _records().where(scope.record_visible()), descending=True),
    "volunteer.teams": Relation(
        TeamMember, MEMBERS.c.volunteer_id, (MEMBERS.c.joined_at, MEMBERS.c.team_id), BY_TIME,
        lambda scope: select(MEMBERS).join(TEAMS, TEAMS.c.id == MEMBERS.c.team_id)
        .where(or_(scope.team_managed(), scope.is_self(MEMBERS.c.volunteer_id)))),
}


async def account_names(session: AsyncSession, account_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = await session.execute(select(ACCOUNTS.c.id, ACCOUNTS.c.name).where(ACCOUNTS.c.id == any_(
        bindparam("ids", list(account_ids), type_=UUIDS))))
    return {r.id: r.name for r in rows}


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


async def page_by_name(session: AsyncSession, query: Select[Any], model: Any, first: int, after: str | None
                       ) -> Page[Any]:
    """One keyset page of `query` (which selects `model`) ordered by (name, id), with the total count."""
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    if after:
        name, row_id = decode_cursor(after, BY_NAME)
        query = query.where(keyset_after((model.name, model.id), (name, row_id)))
    rows = list((await session.scalars(query.order_by(model.name, model.id).limit(first + 1))).all())
    shown = rows[:first]
    return Page(items=shown, cursors=[encode_cursor((r.name, r.id)) for r in shown], has_next=len(rows) > first,
                total_count=int(total or 0))


async def organizations_page(session: AsyncSession, first: int, after: str | None,
                             kind: str | None = None, parent_id: uuid.UUID | None = None) -> Page[Organization]:
    query = select(Organization)
    if kind is not None:
        query = query.where(Organization.kind == kind)
    if parent_id is not None:
        query = query.where(Organization.parent_id == parent_id)
    return await page_by_name(session, query, Organization, first, after)


async def towns(session: AsyncSession) -> list[Any]:
    from youthlink.db.models import Town

    return list((await session.scalars(select(Town).order_by(Town.kind.desc(), Town.code))).all())
