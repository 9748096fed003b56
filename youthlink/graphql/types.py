"""Hand-written GraphQL types over the domain's rows: only what clients need, relationships via loaders."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import strawberry
from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode
from strawberry import relay
from strawberry.dataloader import DataLoader
from strawberry.schema.types.base_scalars import DateTimeDefinition
from strawberry.types import Info

from youthlink.config import get_settings
from youthlink.db import models
from youthlink.db.models import enums
from youthlink.domain import accounts, tasks
from youthlink.domain import hours as hours_domain
from youthlink.domain.matching import decisions
from youthlink.domain.pagination import Page
from youthlink.domain.personal_data import mask_phone
from youthlink.graphql.context import context_of

if TYPE_CHECKING:
    from youthlink.graphql.matching import MatchExplanation
    from youthlink.graphql.outcomes import ProjectOutcomes, ServiceOutcome

TaskStatus = strawberry.enum(enums.TaskStatus)
SignupStatus = strawberry.enum(enums.SignupStatus)
AssignmentMode = strawberry.enum(enums.AssignmentMode)
RecordStatus = strawberry.enum(enums.RecordStatus)
RecordSource = strawberry.enum(enums.RecordSource)
OrganizationKind = strawberry.enum(enums.OrganizationKind)
TownKind = strawberry.enum(enums.TownKind)
Role = strawberry.enum(enums.Role)
OutcomeKind = strawberry.enum(enums.OutcomeKind)
LitterCategory = strawberry.enum(enums.LitterCategory)
ProblemCategory = strawberry.enum(enums.ProblemCategory)

N = TypeVar("N")


def city_time(value: datetime) -> str:
    """Times go out in the city's zone, with its offset: the DateTime scalar's serializer (CITY_DATETIME), so
    only the times a query selects are converted, and no resolver has to remember to."""
    return value.astimezone(ZoneInfo(get_settings().city_timezone)).isoformat()


# strawberry's DateTime (same name, description and parsing), serialized in the city's zone.
CITY_DATETIME = dataclasses.replace(DateTimeDefinition, serialize=city_time)


def _uuids(node_ids: Iterable[str]) -> list[uuid.UUID | None]:
    out: list[uuid.UUID | None] = []
    for node_id in node_ids:
        try:
            out.append(uuid.UUID(str(node_id)))
        except ValueError:
            out.append(None)
    return out


async def _resolve(info: Info, loader_name: str, cls: Any, node_ids: Iterable[str]) -> list[Any]:
    loader = getattr(context_of(info).loaders, loader_name)
    keys = _uuids(node_ids)
    rows = await loader.load_many([k for k in keys if k is not None])
    by_key = dict(zip([k for k in keys if k is not None], rows, strict=True))
    return [cls.from_row(by_key[k]) if k is not None and by_key.get(k) is not None else None for k in keys]


def build_connection(cls: type[N], page: Page[Any], convert: Callable[[Any], Any], after: str | None) -> N:
    edges = [relay.Edge(cursor=c, node=convert(item)) for item, c in zip(page.items, page.cursors, strict=True)]
    return cls(  # type: ignore[call-arg]
        edges=edges,
        page_info=relay.PageInfo(
            has_next_page=page.has_next,
            has_previous_page=after is not None,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        ),
        total_count=page.total_count,
    )


@strawberry.type
class CountedConnection(relay.Connection[relay.NodeType]):
    total_count: int = strawberry.field(description="All items matching, across pages")


async def related(info: Info, relation: str, parent_id: uuid.UUID, first: int | None, after: str | None,
                  convert: Callable[[Any], Any]) -> Any:
    """A relationship connection, through the request's batched loader for `relation` (reads.RELATIONS)."""
    page = await context_of(info).loaders.page(relation, parent_id, first, after)
    connection = build_connection(CountedConnection, page, convert, after)
    if connection.edges:
        await prefetch(info, [edge.node for edge in connection.edges], "edges", "node")
    return connection


def load_now_or_later(loader: DataLoader[Any, Any], key: Any, convert: Callable[[Any], Any]) -> Any:
    """`convert` of the loader's row for `key` (None when missing or invisible): at once when the loader has
    it already (see `prefetch`), else an awaitable. A field that finds its row loaded completes without a
    coroutine, and a list whose items all do so completes without any (no tasks, no gather)."""
    future = loader.load(key)
    if isinstance(future, asyncio.Future) and future.done():
        row = future.result()
        return convert(row) if row is not None else None
    return _convert_later(future, convert)


async def _convert_later(future: Awaitable[Any], convert: Callable[[Any], Any]) -> Any:
    row = await future
    return convert(row) if row is not None else None


# Relationship fields that prefetch can load for a whole list at once: for each type, the GraphQL field, the
# loader it reads through and the row attribute holding the key (None: no related object). Filled in below.
RELATIONSHIPS: dict[type, dict[str, tuple[str, str]]] = {}


def selected(info: Info, *path: str) -> set[str]:
    """Names of the fields selected under `path` below the current field (through fragments, ignoring
    @skip/@include: at worst a skipped relationship is loaded for nothing)."""
    raw = info._raw_info
    nodes: list[Any] = list(raw.field_nodes)
    for name in (*path, None):
        names: set[str] = set()
        children: list[Any] = []
        pending = [sel for node in nodes if node.selection_set for sel in node.selection_set.selections]
        while pending:
            selection = pending.pop()
            if isinstance(selection, FieldNode):
                names.add(selection.name.value)
                if selection.name.value == name:
                    children.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                pending.extend(selection.selection_set.selections)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = raw.fragments.get(selection.name.value)
                if fragment is not None:
                    pending.extend(fragment.selection_set.selections)
        if name is None:
            return names
        nodes = children
    return set()  # pragma: no cover


async def prefetch(info: Info, items: Sequence[Any], *path: str) -> None:
    """Load, for a list of objects of one type, the relationships the query selects under `path`: one batch
    per relationship through the request's loaders (the same statements and visibility as one by one), so
    the items' relationship fields then complete at once (load_now_or_later)."""
    if not items:
        return
    relationships = RELATIONSHIPS.get(type(items[0]))
    if not relationships:
        return
    wanted = selected(info, *path) & relationships.keys()
    if not wanted:
        return
    loaders = context_of(info).loaders
    batches = []
    for field_name in sorted(wanted):
        loader_name, attribute = relationships[field_name]
        keys = [key for key in dict.fromkeys(getattr(item.row, attribute) for item in items) if key is not None]
        if keys:
            batches.append(getattr(loaders, loader_name).load_many(keys))
    if batches:
        await asyncio.gather(*batches)


@strawberry.type
class Location:
    address: str | None
    lat: float
    lng: float


@strawberry.type
class Town(relay.Node):
    id: relay.NodeID[str]
    name: str
    kind: TownKind  # type: ignore[valid-type]

    @classmethod
    def from_row(cls, row: models.Town) -> Town:
        return cls(id=str(row.id), name=row.name, kind=row.kind)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve(info, "town", cls, node_ids)


@strawberry.type
class OrganizationStats:
    total_hours: float
    volunteers: int


@strawberry.type
class Organization(relay.Node):
    id: relay.NodeID[str]
    name: str
    kind: OrganizationKind  # type: ignore[valid-type]
    description: str
    illustrative: bool = strawberry.field(description="Demo data not named in public reports")
    row: strawberry.Private[models.Organization]

    @classmethod
    def from_row(cls, row: models.Organization) -> Organization:
        return cls(id=str(row.id), name=row.name, kind=row.kind, description=row.description,
                   illustrative=row.illustrative, row=row)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve(info, "organization", cls, node_ids)

    @strawberry.field
    def parent(self, info: Info) -> Organization | None:
        if self.row.parent_id is None:
            return None
        return load_now_or_later(context_of(info).loaders.organization, self.row.parent_id, Organization.from_row)

    @strawberry.field
    def town(self, info: Info) -> Town | None:
        if self.row.town_id is None:
            return None
        return load_now_or_later(context_of(info).loaders.town, self.row.town_id, Town.from_row)

    @strawberry.field(description="Child organizations (town committees, branches)")
    async def children(self, info: Info, first: int | None = None, after: str | None = None
                       ) -> CountedConnection[Organization]:
        return await related(info, "organization.children", self.row.id, first, after, Organization.from_row)

    @strawberry.field
    async def teams(self, info: Info, first: int | None = None, after: str | None = None
                    ) -> CountedConnection[Team]:
        return await related(info, "organization.teams", self.row.id, first, after, Team.from_row)

    @strawberry.field(description="Projects the organization owns or partners in")
    async def projects(self, info: Info, first: int | None = None, after: str | None = None
                       ) -> CountedConnection[Project]:
        return await related(info, "organization.projects", self.row.id, first, after, Project.from_row)

    @strawberry.field(description="The organization's own tasks, newest first")
    async def tasks(self, info: Info, first: int | None = None, after: str | None = None
                    ) -> CountedConnection[Task]:
        return await related(info, "organization.tasks", self.row.id, first, after, Task.from_row)

    @strawberry.field
    async def stats(self, info: Info) -> OrganizationStats:
        totals = await context_of(info).loaders.organization_totals.load(self.row.id)
        return OrganizationStats(total_hours=totals.hours, volunteers=totals.volunteers)


@strawberry.type
class Team(relay.Node):
    id: relay.NodeID[str]
    name: str
    is_commando: bool
    active_from: date | None
    active_until: date | None
    row: strawberry.Private[models.Team]

    @classmethod
    def from_row(cls, row: models.Team) -> Team:
        return cls(id=str(row.id), name=row.name, is_commando=row.is_commando, active_from=row.active_from,
                   active_until=row.active_until, row=row)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve(info, "team", cls, node_ids)

    @strawberry.field
    async def member_count(self, info: Info) -> int:
        return await context_of(info).loaders.member_count.load(self.row.id) or 0

    @strawberry.field
    def organization(self, info: Info) -> Organization | None:
        return load_now_or_later(context_of(info).loaders.organization, self.row.organization_id,
                                 Organization.from_row)

    @strawberry.field(description="Members with their role; for the team's leaders and the organization's admins")
    async def members(self, info: Info, first: int | None = None, after: str | None = None
                      ) -> CountedConnection[TeamMembership]:
        return await related(info, "team.members", self.row.id, first, after, TeamMembership.from_row)

    @strawberry.field
    async def projects(self, info: Info, first: int | None = None, after: str | None = None
                       ) -> CountedConnection[Project]:
        return await related(info, "team.projects", self.row.id, first, after, Project.from_row)

    @strawberry.field(description="Newest first")
    async def tasks(self, info: Info, first: int | None = None, after: str | None = None
                    ) -> CountedConnection[Task]:
        return await related(info, "team.tasks", self.row.id, first, after, Task.from_row)


TeamRole = strawberry.enum(enums.TeamRole)


@strawberry.type
class TeamMembership(relay.Node):
    """A volunteer's place in a team."""

    id: relay.NodeID[str]
    role: TeamRole  # type: ignore[valid-type]
    joined_at: datetime
    row: strawberry.Private[models.TeamMember]

    @classmethod
    def from_row(cls, row: models.TeamMember) -> TeamMembership:
        return cls(id=f"{row.team_id}:{row.volunteer_id}", role=row.role, joined_at=row.joined_at,
                   row=row)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        keys: list[tuple[uuid.UUID, uuid.UUID] | None] = []
        for node_id in node_ids:
            team, _, volunteer = str(node_id).partition(":")
            try:
                keys.append((uuid.UUID(team), uuid.UUID(volunteer)))
            except ValueError:
                keys.append(None)
        loaders = context_of(info).loaders
        rows = await loaders.membership.load_many([k for k in keys if k is not None])
        found = dict(zip([k for k in keys if k is not None], rows, strict=True))
        out: list[Any] = []
        for key in keys:
            row = found.get(key) if key else None
            # A membership is visible to whoever may see the volunteer.
            visible = row is not None and await loaders.volunteer.load(row.volunteer_id) is not None
            out.append(cls.from_row(row) if row is not None and visible else None)
        return out

    @strawberry.field
    def team(self, info: Info) -> Team | None:
        return load_now_or_later(context_of(info).loaders.team, self.row.team_id, Team.from_row)

    @strawberry.field
    def volunteer(self, info: Info) -> Volunteer | None:
        return load_now_or_later(context_of(info).loaders.volunteer, self.row.volunteer_id, Volunteer.from_row)


ProjectRole = strawberry.enum(enums.ProjectRole)


@strawberry.type
class ProjectOrganization:
    organization: Organization
    role: ProjectRole  # type: ignore[valid-type]


@strawberry.type
class ProjectStats:
    total_hours: float
    volunteers: int


@strawberry.type
class Project(relay.Node):
    id: relay.NodeID[str]
    name: str
    description: str
    row: strawberry.Private[models.Project]

    @classmethod
    def from_row(cls, row: models.Project) -> Project:
        return cls(id=str(row.id), name=row.name, description=row.description, row=row)

    @strawberry.field(description="The service outcome its tasks record (null: none)")
    def outcome_kind(self) -> OutcomeKind | None:  # type: ignore[valid-type]
        return self.row.outcome_kind

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve(info, "project", cls, node_ids)

    @strawberry.field
    def owner(self, info: Info) -> Organization | None:
        return load_now_or_later(context_of(info).loaders.organization, self.row.owner_organization_id,
                                 Organization.from_row)

    @strawberry.field(description="The owner first, then partner organizations")
    async def organizations(self, info: Info) -> list[ProjectOrganization]:
        linked = await context_of(info).loaders.project_organizations.load(self.row.id)
        return [ProjectOrganization(organization=Organization.from_row(org), role=enums.ProjectRole(role))
                for org, role in linked or []]

    @strawberry.field
    async def teams(self, info: Info, first: int | None = None, after: str | None = None
                    ) -> CountedConnection[Team]:
        return await related(info, "project.teams", self.row.id, first, after, Team.from_row)

    @strawberry.field(description="Newest first")
    async def tasks(self, info: Info, first: int | None = None, after: str | None = None
                    ) -> CountedConnection[Task]:
        return await related(info, "project.tasks", self.row.id, first, after, Task.from_row)

    @strawberry.field(description="Approved hours (with corrections) and distinct volunteers on its tasks")
    async def stats(self, info: Info) -> ProjectStats:
        totals = await context_of(info).loaders.project_totals.load(self.row.id)
        return ProjectStats(total_hours=totals.hours, volunteers=totals.volunteers)


@strawberry.type
class Task(relay.Node):
    id: relay.NodeID[str]
    title: str
    description: str
    starts_at: datetime
    ends_at: datetime
    signup_deadline: datetime | None
    slots: int
    filled_slots: int
    status: TaskStatus  # type: ignore[valid-type]
    assignment_mode: AssignmentMode  # type: ignore[valid-type]
    required_skills: list[str]
    min_age: int | None
    checkin_radius_m: int
    location: Location
    distance_km: float | None = strawberry.field(description="From the `near` point of the search, if any")
    row: strawberry.Private[models.Task]

    @classmethod
    def from_row(cls, row: models.Task, distance_km: float | None = None) -> Task:
        return cls(
            id=str(row.id), title=row.title, description=row.description, starts_at=row.starts_at,
            ends_at=row.ends_at, signup_deadline=row.signup_deadline,
            slots=row.slots, filled_slots=row.filled_slots, status=row.status, assignment_mode=row.assignment_mode,
            required_skills=list(row.required_skills), min_age=row.min_age, checkin_radius_m=row.checkin_radius_m,
            location=Location(address=row.address, lat=row.lat, lng=row.lng),
            distance_km=round(distance_km, 3) if distance_km is not None else None, row=row,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve(info, "task", cls, node_ids)

    @strawberry.field(description="Matching only considers volunteers living within this distance (null: no limit)")
    def match_radius_km(self) -> float | None:
        return self.row.match_radius_km

    @strawberry.field(description="The rotating on-site check-in code; only for those who run the task")
    async def check_in_code(self, info: Info) -> str | None:
        if not await context_of(info).loaders.manages_task.load(self.row.id):
            return None
        return tasks.current_checkin_code(self.row)

    @strawberry.field
    def organization(self, info: Info) -> Organization | None:
        return load_now_or_later(context_of(info).loaders.organization, self.row.organization_id,
                                 Organization.from_row)

    @strawberry.field
    def town(self, info: Info) -> Town | None:
        if self.row.town_id is None:
            return None
        return load_now_or_later(context_of(info).loaders.town, self.row.town_id, Town.from_row)

    @strawberry.field
    def project(self, info: Info) -> Project | None:
        if self.row.project_id is None:
            return None
        return load_now_or_later(context_of(info).loaders.project, self.row.project_id, Project.from_row)

    @strawberry.field
    def team(self, info: Info) -> Team | None:
        if self.row.team_id is None:
            return None
        return load_now_or_later(context_of(info).loaders.team, self.row.team_id, Team.from_row)

    @strawberry.field(description="All sign-ups for those who run the task; a volunteer sees their own")
    async def signups(self, info: Info, first: int | None = None, after: str | None = None
                      ) -> CountedConnection[Signup]:
        return await related(info, "task.signups", self.row.id, first, after, Signup.from_row)

    @strawberry.field(description="Service records of the task; a volunteer sees their own")
    async def service_records(self, info: Info, first: int | None = None, after: str | None = None
                              ) -> CountedConnection[ServiceRecord]:
        return await related(info, "task.serviceRecords", self.row.id, first, after, ServiceRecord.from_row)

    @strawberry.field(description="Its service outcome, for a task of a project that records one (null: none yet)")
    def outcome(self, info: Info) -> Annotated[ServiceOutcome, strawberry.lazy("youthlink.graphql.outcomes")] | None:
        if self.row.project_id is None:
            return None
        from youthlink.graphql import outcomes  # imported here: its types are built on these

        return load_now_or_later(context_of(info).loaders.task_outcome, self.row.id,
                                 outcomes.ServiceOutcome.from_report)


@strawberry.type
class Volunteer(relay.Node):
    id: relay.NodeID[str]
    name: str
    phone_masked: str
    skills: list[str]
    total_hours: float
    star_level: int = strawberry.field(description="星级: 1 at 100 h, 2 at 300, 3 at 600, 4 at 1,000, 5 at 1,500")
    row: strawberry.Private[models.Volunteer]

    @classmethod
    def from_row(cls, row: models.Volunteer) -> Volunteer:
        return cls(id=str(row.id), name=row.name, phone_masked=mask_phone(row.phone), skills=list(row.skills),
                   total_hours=float(row.total_hours), star_level=hours_domain.star_level(row.total_hours), row=row)

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve(info, "volunteer", cls, node_ids)

    @strawberry.field(description="Full number for the person and the admins who need it; masked for others")
    async def phone(self, info: Info) -> str:
        allowed = await context_of(info).loaders.full_phone.load(self.row.id)
        return self.row.phone if allowed else mask_phone(self.row.phone)

    @strawberry.field
    async def town(self, info: Info) -> Town | None:
        if self.row.town_id is None:
            return None
        row = await context_of(info).loaders.town.load(self.row.town_id)
        return Town.from_row(row) if row else None

    @strawberry.field
    def guardian_consent_recorded(self) -> bool:
        return self.row.guardian_consent_at is not None

    @strawberry.field(description="身份证号: full for the person and admins of an organization they serve with "
                                  "(each admin read is audited), masked for others; null if not recorded")
    async def id_card(self, info: Info) -> str | None:
        if self.row.id_card_cipher is None:
            return None
        ctx = context_of(info)
        full = bool(await ctx.loaders.full_phone.load(self.row.id))
        if full and ctx.actor.volunteer_id != self.row.id:
            # An admin reading the full number leaves an audit row: its own short unit of work.
            async with ctx.db.unit_of_work() as session:
                return await accounts.read_id_card(session, ctx.actor, self.row, may_read_full=True)
        async with ctx.db.read() as session:
            return await accounts.read_id_card(session, ctx.actor, self.row, may_read_full=full)

    @strawberry.field(description="Newest first")
    async def signups(self, info: Info, first: int | None = None, after: str | None = None
                      ) -> CountedConnection[Signup]:
        return await related(info, "volunteer.signups", self.row.id, first, after, Signup.from_row)

    @strawberry.field(description="Newest first")
    async def service_records(self, info: Info, first: int | None = None, after: str | None = None
                              ) -> CountedConnection[ServiceRecord]:
        return await related(info, "volunteer.serviceRecords", self.row.id, first, after, ServiceRecord.from_row)

    @strawberry.field(description="Teams the volunteer belongs to, with the role in each")
    async def teams(self, info: Info, first: int | None = None, after: str | None = None
                    ) -> CountedConnection[TeamMembership]:
        return await related(info, "volunteer.teams", self.row.id, first, after, TeamMembership.from_row)


@strawberry.type
class Signup(relay.Node):
    id: relay.NodeID[str]
    status: SignupStatus  # type: ignore[valid-type]
    applied_at: datetime
    checked_in_at: datetime | None
    checked_out_at: datetime | None
    cancelled_at: datetime | None
    row: strawberry.Private[models.Signup]

    @classmethod
    def from_row(cls, row: models.Signup) -> Signup:
        return cls(
            id=str(row.id), status=row.status, applied_at=row.applied_at, checked_in_at=row.checked_in_at,
            checked_out_at=row.checked_out_at, cancelled_at=row.cancelled_at, row=row,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve(info, "signup", cls, node_ids)

    @strawberry.field
    def task(self, info: Info) -> Task | None:
        return load_now_or_later(context_of(info).loaders.task, self.row.task_id, Task.from_row)

    @strawberry.field
    def volunteer(self, info: Info) -> Volunteer | None:
        return load_now_or_later(context_of(info).loaders.volunteer, self.row.volunteer_id, Volunteer.from_row)

    @strawberry.field
    def service_record(self, info: Info) -> ServiceRecord | None:
        return load_now_or_later(context_of(info).loaders.record_by_signup, self.row.id, ServiceRecord.from_row)

    @strawberry.field
    def match_score(self, info: Info) -> float | None:
        return self._decision(info, lambda found: _float(found.score))

    @strawberry.field
    def decided_at(self, info: Info) -> datetime | None:
        if self.row.decided_at is not None or self.row.status not in POOL_DECISIONS:
            return self.row.decided_at
        return self._decision(info, lambda found: found.decided_at)

    @strawberry.field(description="The matcher's breakdown of matchScore and the reason for its decision")
    def match_explanation(self, info: Info
                          ) -> Annotated[MatchExplanation, strawberry.lazy("youthlink.graphql.matching")] | None:
        from youthlink.graphql import matching  # imported here: matching's types are built on these

        return self._decision(info, lambda found: None if found.explanation is None else matching.explanation_of(
            found.explanation, found.score))

    def _decision(self, info: Info, convert: Callable[[decisions.Decided], Any]) -> Any:
        """`convert` of the sign-up's matching decision: its own, or its batch's (through the round's record)."""
        if not decisions.needs_record(self.row):
            return convert(decisions.decided(self.row, None))
        return load_now_or_later(context_of(info).loaders.decision, (self.row.task_id, self.row.matching_round),
                                 lambda record: convert(decisions.decided(self.row, record)))


# Decisions a batch keeps in its MatchingDecision only (their rows still read APPLIED).
POOL_DECISIONS = (enums.SignupStatus.WAITLISTED, enums.SignupStatus.REJECTED)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


@strawberry.type
class ServiceRecord(relay.Node):
    id: relay.NodeID[str]
    hours: float
    status: RecordStatus  # type: ignore[valid-type]
    source: RecordSource  # type: ignore[valid-type]
    started_at: datetime
    ended_at: datetime
    approved_at: datetime | None
    note: str
    rejected_reason: str | None
    activity_name: str
    service_date: date = strawberry.field(description="The day of service, in the city's time zone")
    place: str
    content: str
    person_in_charge: str
    due_on: date = strawberry.field(description="Recording deadline: 10 working days after the activity")
    late: bool = strawberry.field(description="Approved after, or still pending past, its recording deadline")
    auto_approved: bool
    overlapping: bool = strawberry.field(description="Another record of the volunteer covers the same time")
    row: strawberry.Private[models.ServiceRecord]

    @classmethod
    def from_row(cls, row: models.ServiceRecord) -> ServiceRecord:
        return cls(
            id=str(row.id), hours=float(row.hours), status=row.status, source=row.source,
            started_at=row.started_at, ended_at=row.ended_at,
            approved_at=row.approved_at, note=row.note, rejected_reason=row.rejected_reason,
            activity_name=row.activity_name, service_date=row.service_date, place=row.place, content=row.content,
            person_in_charge=row.person_in_charge, due_on=row.due_on, late=row.late,
            auto_approved=row.auto_approved, overlapping=row.overlaps_record_id is not None, row=row,
        )

    @classmethod
    async def resolve_nodes(cls, *, info: Info, node_ids: Iterable[str], required: bool = False) -> list[Any]:
        return await _resolve(info, "record", cls, node_ids)

    @strawberry.field(description="Pending, with few working days left before the recording deadline")
    def due_soon(self) -> bool:
        return self.row.status is enums.RecordStatus.PENDING and hours_domain.is_due_soon(self.row.due_on)

    @strawberry.field(description="The organizing unit")
    def organization(self, info: Info) -> Organization | None:
        return load_now_or_later(context_of(info).loaders.organization, self.row.organization_id,
                                 Organization.from_row)

    @strawberry.field(description="Null for offline (imported) records")
    def task(self, info: Info) -> Task | None:
        if self.row.task_id is None:
            return None
        return load_now_or_later(context_of(info).loaders.task, self.row.task_id, Task.from_row)

    @strawberry.field
    def volunteer(self, info: Info) -> Volunteer | None:
        return load_now_or_later(context_of(info).loaders.volunteer, self.row.volunteer_id, Volunteer.from_row)


RELATIONSHIPS.update({
    Organization: {"parent": ("organization", "parent_id"), "town": ("town", "town_id")},
    Team: {"organization": ("organization", "organization_id")},
    TeamMembership: {"team": ("team", "team_id"), "volunteer": ("volunteer", "volunteer_id")},
    Project: {"owner": ("organization", "owner_organization_id")},
    Task: {"organization": ("organization", "organization_id"), "town": ("town", "town_id"),
           "project": ("project", "project_id"), "team": ("team", "team_id"), "outcome": ("task_outcome", "id")},
    Signup: {"task": ("task", "task_id"), "volunteer": ("volunteer", "volunteer_id"),
             "serviceRecord": ("record_by_signup", "id")},
    ServiceRecord: {"organization": ("organization", "organization_id"), "task": ("task", "task_id"),
                    "volunteer": ("volunteer", "volunteer_id")},
})


@strawberry.type
class Adjustment:
    id: strawberry.ID
    hours: float
    reason: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: models.Adjustment) -> Adjustment:
        return cls(id=strawberry.ID(relay.to_base64("Adjustment", str(row.id))), hours=float(row.hours),
                   reason=row.reason, created_at=row.created_at)


@strawberry.type
class UserError:
    field: str | None
    message: str
    code: str


async def _viewer_name(root: Viewer, info: Info) -> str:
    return await context_of(info).loaders.account_name.load(root.account_id) or ""


async def _viewer_volunteer(root: Viewer, info: Info) -> Volunteer | None:
    if root.volunteer_id is None:
        return None
    row = await context_of(info).loaders.volunteer.load(root.volunteer_id)
    return Volunteer.from_row(row) if row else None


@strawberry.enum
class StatsAudience(Enum):
    CITY = "city"
    ORGANIZATION = "organization"
    VOLUNTEER = "volunteer"


@strawberry.type
class Viewer:
    """Who is logged in; each part is read only when asked for."""

    name: str = strawberry.field(resolver=_viewer_name)
    roles: list[Role]  # type: ignore[valid-type]
    volunteer: Volunteer | None = strawberry.field(resolver=_viewer_volunteer)
    stats_audience: StatsAudience | None = strawberry.field(
        description="Whose figures cityStats answers with for this login: the city's, organizations' (with their "
                    "children) or one's own; null when none (the dashboard is for CITY and ORGANIZATION)")
    account_id: strawberry.Private[uuid.UUID]
    volunteer_id: strawberry.Private[uuid.UUID | None]


# Statistics

@strawberry.type
class OrganizationBreakdown:
    organization: Organization | None
    hours: float
    volunteers: int
    tasks: int


@strawberry.type
class TownBreakdown:
    town: Town | None
    hours: float
    volunteers: int


@strawberry.type
class ProjectBreakdown:
    project: Project | None
    hours: float
    volunteers: int


@strawberry.type
class TeamBreakdown:
    team: Team | None
    hours: float
    volunteers: int


@strawberry.type
class MonthFigures:
    month: str = strawberry.field(description="YYYY-MM in the city's time zone")
    hours: float
    active_volunteers: int
    new_volunteers: int


@strawberry.type
class StarLevelCount:
    level: int
    volunteers: int


@strawberry.type
class CityStats:
    registered_volunteers: int
    active_volunteers: int
    total_hours: float
    tasks_published: int
    slots_offered: int
    slots_filled: int
    fill_rate: float
    by_organization: list[OrganizationBreakdown]
    by_town: list[TownBreakdown]
    by_project: list[ProjectBreakdown]
    by_team: list[TeamBreakdown]
    monthly: list[MonthFigures]
    star_levels: list[StarLevelCount]
    hours_per_volunteer: float = strawberry.field(description="Hours per active volunteer")
    no_shows: int
    no_show_rate: float = strawberry.field(
        description="Of the sign-ups that ended (credited with an approved record, or marked no-show), the no-shows")
    figures: strawberry.Private[Any] = None  # the domain's CityStats (its scope and period)

    @strawberry.field(description="Service outcomes per project (litter collected, rivers patrolled) of the tasks "
                                  "that started in the period, in the same scope as the other figures")
    async def outcomes(self, info: Info
                       ) -> list[Annotated[ProjectOutcomes, strawberry.lazy("youthlink.graphql.outcomes")]]:
        from youthlink.graphql import outcomes

        return await outcomes.project_outcomes(info, self.figures)


def rows_in_order(rows: Sequence[Any], convert: Callable[[Any], Any]) -> list[Any]:
    return [convert(r) if r is not None else None for r in rows]


ID = Annotated[strawberry.ID, strawberry.argument(description="A Relay global ID")]
