"""Root query fields: each takes its turn on the request's read session (sibling fields resolve concurrently).

A refusal (DomainError) raised here reaches the client as a top-level error with `extensions.code`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from pydantic import ValidationError
from strawberry import relay
from strawberry.types import Info

from youthlink.db.models.enums import TaskStatus as DomainTaskStatus
from youthlink.domain import pagination, policies, reads, stats, tasks, volunteers
from youthlink.domain.inputs import StatsPeriod
from youthlink.errors import Forbidden
from youthlink.graphql import types as t
from youthlink.graphql.context import context_of
from youthlink.graphql.ids import decode_optional


@strawberry.input
class NearInput:
    lat: float
    lng: float
    radius_km: float


@strawberry.input
class TaskFilter:
    status: list[t.TaskStatus] | None = None  # type: ignore[valid-type]
    near: NearInput | None = None
    skills: list[str] | None = None
    starts_after: datetime | None = None
    starts_before: datetime | None = None
    organization_id: strawberry.ID | None = None
    project_id: strawberry.ID | None = None
    town_id: strawberry.ID | None = None
    team_id: strawberry.ID | None = None


@strawberry.input
class VolunteerFilter:
    team_id: strawberry.ID | None = None
    town_id: strawberry.ID | None = None
    skills: list[str] | None = None
    active_since: date | None = strawberry.field(default=None, description="Has approved service since this day")


def _task_filter(f: TaskFilter | None) -> tasks.TaskFilter:
    if f is None:
        return tasks.TaskFilter()
    return tasks.TaskFilter(
        statuses=tuple(DomainTaskStatus(s) for s in f.status or ()),
        near=(f.near.lat, f.near.lng, f.near.radius_km) if f.near else None,
        skills=tuple(s.strip().lower() for s in f.skills) if f.skills is not None else None,
        starts_after=f.starts_after,
        starts_before=f.starts_before,
        organization_id=decode_optional(f.organization_id, "Organization", "filter.organizationId"),
        project_id=decode_optional(f.project_id, "Project", "filter.projectId"),
        town_id=decode_optional(f.town_id, "Town", "filter.townId"),
        team_id=decode_optional(f.team_id, "Team", "filter.teamId"),
    )


def _volunteer_filter(f: VolunteerFilter | None) -> volunteers.VolunteerFilter:
    if f is None:
        return volunteers.VolunteerFilter()
    return volunteers.VolunteerFilter(
        team_id=decode_optional(f.team_id, "Team", "filter.teamId"),
        town_id=decode_optional(f.town_id, "Town", "filter.townId"),
        skills=tuple(s.strip().lower() for s in f.skills or ()),
        active_since=f.active_since,
    )


async def _with_relationships(info: Info, connection: Any) -> Any:
    """The connection, with the relationships its nodes' selection asks for loaded in one batch each."""
    await t.prefetch(info, [edge.node for edge in connection.edges], "edges", "node")
    return connection


def _convert(row: Any, cls: Any) -> Any:
    return cls.from_row(row) if row is not None else None


@strawberry.type
class Query:
    @strawberry.field(description="Any object by its global ID; null when it does not exist or is not visible")
    async def node(self, info: Info, id: relay.GlobalID) -> relay.Node | None:
        try:
            return await id.resolve_node(info, required=False)  # type: ignore[no-any-return]
        except (relay.GlobalIDValueError, ValueError, TypeError, KeyError):
            # An ID of no known type reads like one that does not exist: null, as for any invisible object.
            return None

    @strawberry.field(description="The 16 towns and sub-districts")
    async def towns(self, info: Info) -> list[t.Town]:
        async with context_of(info).reads.session() as session:
            return [t.Town.from_row(row) for row in await reads.towns(session)]

    @strawberry.field
    async def organizations(self, info: Info, first: int | None = None, after: str | None = None
                            ) -> t.CountedConnection[t.Organization]:
        size = pagination.page_size(first)
        async with context_of(info).reads.session() as session:
            page = await reads.organizations_page(session, size, after)
        return await _with_relationships(
            info, t.build_connection(t.CountedConnection[t.Organization], page, t.Organization.from_row, after))

    @strawberry.field(description="Tasks, soonest first; `near` adds distanceKm")
    async def tasks(self, info: Info, filter: TaskFilter | None = None, first: int | None = None,
                    after: str | None = None) -> t.CountedConnection[t.Task]:
        ctx = context_of(info)
        criteria = _task_filter(filter)
        async with ctx.reads.session() as session:
            page = await tasks.search_tasks(session, await ctx.loaders.scope(session), criteria, first, after)
        return await _with_relationships(info, t.build_connection(
            t.CountedConnection[t.Task], page, lambda r: t.Task.from_row(r.task, r.distance_km), after))

    @strawberry.field(description="Volunteers serving with what the viewer coordinates (all, for city admins)")
    async def volunteers(self, info: Info, filter: VolunteerFilter | None = None, first: int | None = None,
                         after: str | None = None) -> t.CountedConnection[t.Volunteer]:
        ctx = context_of(info)
        criteria = _volunteer_filter(filter)
        async with ctx.reads.session() as session:
            page = await volunteers.search(session, await ctx.loaders.scope(session), criteria, first, after)
        return await _with_relationships(
            info, t.build_connection(t.CountedConnection[t.Volunteer], page, t.Volunteer.from_row, after))

    @strawberry.field(description="Who is logged in")
    async def viewer(self, info: Info) -> t.Viewer:
        ctx = context_of(info)
        if not ctx.actor.is_authenticated:
            raise GraphQLError("请先登录", extensions={"code": "UNAUTHENTICATED"})
        assert ctx.actor.account_id is not None
        try:
            audience: t.StatsAudience | None = t.StatsAudience(policies.stats_audience(ctx.actor))
        except Forbidden:
            audience = None
        return t.Viewer(roles=sorted({g.role for g in ctx.actor.grants}), account_id=ctx.actor.account_id,
                        volunteer_id=ctx.actor.volunteer_id, stats_audience=audience)

    @strawberry.field(description="Figures for a period of days: the city's (city admins), an organization's with "
                      "all its children (its admins), or one's own (volunteers)")
    async def city_stats(self, info: Info, from_: Annotated[date, strawberry.argument(name="from")], to: date
                         ) -> t.CityStats:
        ctx = context_of(info)
        try:
            period = StatsPeriod.model_validate({"from": from_, "to": to})
        except ValidationError as exc:
            raise GraphQLError(exc.errors()[0]["msg"], extensions={"code": "INVALID_PERIOD", "field": "to"}) from None
        async with ctx.reads.session() as session:
            figures = await stats.city_stats(session, ctx.actor, period)
        loaders = ctx.loaders
        orgs = await loaders.organization.load_many([b.key for b in figures.by_organization])
        town_rows = await loaders.town.load_many([b.key for b in figures.by_town])
        projects = await loaders.project.load_many([b.key for b in figures.by_project])
        teams = await loaders.team.load_many([b.key for b in figures.by_team])
        return t.CityStats(
            registered_volunteers=figures.registered_volunteers,
            active_volunteers=figures.active_volunteers,
            total_hours=float(figures.total_hours),
            tasks_published=figures.tasks_published,
            slots_offered=figures.slots_offered,
            slots_filled=figures.slots_filled,
            fill_rate=figures.fill_rate,
            by_organization=[
                t.OrganizationBreakdown(organization=_convert(o, t.Organization), hours=float(b.hours),
                                        volunteers=b.volunteers, tasks=b.tasks)
                for b, o in zip(figures.by_organization, orgs, strict=True)
            ],
            by_town=[
                t.TownBreakdown(town=_convert(w, t.Town), hours=float(b.hours), volunteers=b.volunteers)
                for b, w in zip(figures.by_town, town_rows, strict=True)
            ],
            by_project=[
                t.ProjectBreakdown(project=_convert(p, t.Project), hours=float(b.hours), volunteers=b.volunteers)
                for b, p in zip(figures.by_project, projects, strict=True)
            ],
            monthly=[t.MonthFigures(month=m.month, hours=float(m.hours), active_volunteers=m.active_volunteers,
                                    new_volunteers=m.new_volunteers) for m in figures.monthly],
            star_levels=[t.StarLevelCount(level=level, volunteers=n) for level, n in figures.star_levels],
            by_team=[
                t.TeamBreakdown(team=_convert(m, t.Team), hours=float(b.hours), volunteers=b.volunteers)
                for b, m in zip(figures.by_team, teams, strict=True)
            ],
            hours_per_volunteer=figures.hours_per_volunteer,
            no_shows=figures.no_shows,
            no_show_rate=figures.no_show_rate,
            figures=figures,
        )
