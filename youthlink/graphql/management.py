"""Mutations that manage the city's structure: organizations, admins, teams, members, projects."""

from __future__ import annotations

from datetime import date
from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from youthlink.db.models.enums import OrganizationKind as DomainOrganizationKind
from youthlink.domain import inputs, management
from youthlink.domain.actor import Actor
from youthlink.graphql import types as t
from youthlink.graphql.ids import decode_id, decode_optional
from youthlink.graphql.matching import InviteVolunteersPayload, invite_payload
from youthlink.graphql.mutations import perform


@strawberry.input
class CreateOrganizationInput:
    name: str
    kind: t.OrganizationKind  # type: ignore[valid-type]
    parent_id: strawberry.ID | None = None
    town_id: strawberry.ID | None = None
    description: str = ""


@strawberry.input
class OrganizationVolunteerInput:
    organization_id: strawberry.ID
    volunteer_id: strawberry.ID


@strawberry.input
class CreateTeamInput:
    organization_id: strawberry.ID
    name: str
    is_commando: bool = False
    active_from: date | None = None
    active_until: date | None = None


@strawberry.input
class TeamVolunteerInput:
    team_id: strawberry.ID
    volunteer_id: strawberry.ID


@strawberry.input
class CreateProjectInput:
    owner_organization_id: strawberry.ID
    name: str
    description: str = ""
    outcome_kind: t.OutcomeKind | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="The service outcome its tasks record (null: none)")


@strawberry.input
class ProjectOrganizationInput:
    project_id: strawberry.ID
    organization_id: strawberry.ID


@strawberry.input
class ProjectTeamInput:
    project_id: strawberry.ID
    team_id: strawberry.ID


@strawberry.input
class CallUpTeamInput:
    team_id: strawberry.ID
    task_id: strawberry.ID
    quota: int = strawberry.field(description="How many of the team's members to invite at most")


@strawberry.type
class OrganizationPayload:
    organization: t.Organization | None = None
    errors: list[t.UserError]


@strawberry.type
class TeamPayload:
    team: t.Team | None = None
    errors: list[t.UserError]


@strawberry.type
class TeamMembershipPayload:
    membership: t.TeamMembership | None = None
    errors: list[t.UserError]


@strawberry.type
class ProjectPayload:
    project: t.Project | None = None
    errors: list[t.UserError]


def _org(row: Any, errors: list[t.UserError]) -> OrganizationPayload:
    return OrganizationPayload(organization=t.Organization.from_row(row) if row else None, errors=errors)


def _membership(row: Any, errors: list[t.UserError]) -> TeamMembershipPayload:
    return TeamMembershipPayload(membership=t.TeamMembership.from_row(row) if row else None, errors=errors)


def _project(row: Any, errors: list[t.UserError]) -> ProjectPayload:
    return ProjectPayload(project=t.Project.from_row(row) if row else None, errors=errors)


@strawberry.type
class ManagementMutation:
    @strawberry.mutation(description="City admins: a top-level organization; org admins: one below theirs")
    async def create_organization(self, info: Info, input: CreateOrganizationInput) -> OrganizationPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            command = inputs.CreateOrganization(
                name=input.name, kind=DomainOrganizationKind(input.kind),
                parent_id=decode_optional(input.parent_id, "Organization", "parentId"),
                town_id=decode_optional(input.town_id, "Town", "townId"), description=input.description,
            )
            return await management.create_organization(session, actor, command)

        return _org(*await perform(info, action))

    @strawberry.mutation(description="Make a registered volunteer an admin of the organization")
    async def appoint_org_admin(self, info: Info, input: OrganizationVolunteerInput) -> OrganizationPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            org_id = decode_id(input.organization_id, "Organization", "organizationId")
            await management.appoint_org_admin(session, actor, org_id,
                                               decode_id(input.volunteer_id, "Volunteer", "volunteerId"))
            return await session.get(management.Organization, org_id)

        return _org(*await perform(info, action))

    @strawberry.mutation
    async def revoke_org_admin(self, info: Info, input: OrganizationVolunteerInput) -> OrganizationPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            org_id = decode_id(input.organization_id, "Organization", "organizationId")
            await management.revoke_org_admin(session, actor, org_id,
                                              decode_id(input.volunteer_id, "Volunteer", "volunteerId"))
            return await session.get(management.Organization, org_id)

        return _org(*await perform(info, action))

    @strawberry.mutation(description="A team of an organization; a commando team (青年突击队) has a period")
    async def create_team(self, info: Info, input: CreateTeamInput) -> TeamPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            command = inputs.CreateTeam(
                organization_id=decode_id(input.organization_id, "Organization", "organizationId"),
                name=input.name, is_commando=input.is_commando, active_from=input.active_from,
                active_until=input.active_until,
            )
            return await management.create_team(session, actor, command)

        team, errors = await perform(info, action)
        return TeamPayload(team=t.Team.from_row(team) if team else None, errors=errors)

    @strawberry.mutation
    async def add_team_member(self, info: Info, input: TeamVolunteerInput) -> TeamMembershipPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            return await management.add_team_member(session, actor, decode_id(input.team_id, "Team", "teamId"),
                                                    decode_id(input.volunteer_id, "Volunteer", "volunteerId"))

        return _membership(*await perform(info, action))

    @strawberry.mutation
    async def remove_team_member(self, info: Info, input: TeamVolunteerInput) -> TeamMembershipPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            return await management.remove_team_member(session, actor, decode_id(input.team_id, "Team", "teamId"),
                                                       decode_id(input.volunteer_id, "Volunteer", "volunteerId"))

        return _membership(*await perform(info, action))

    @strawberry.mutation(description="A member becomes the team's leader (org admins)")
    async def appoint_team_leader(self, info: Info, input: TeamVolunteerInput) -> TeamMembershipPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            return await management.appoint_team_leader(session, actor, decode_id(input.team_id, "Team", "teamId"),
                                                        decode_id(input.volunteer_id, "Volunteer", "volunteerId"))

        return _membership(*await perform(info, action))

    @strawberry.mutation
    async def create_project(self, info: Info, input: CreateProjectInput) -> ProjectPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            command = inputs.CreateProject(
                owner_organization_id=decode_id(input.owner_organization_id, "Organization", "ownerOrganizationId"),
                name=input.name, description=input.description, outcome_kind=input.outcome_kind,
            )
            return await management.create_project(session, actor, command)

        return _project(*await perform(info, action))

    @strawberry.mutation
    async def add_project_partner(self, info: Info, input: ProjectOrganizationInput) -> ProjectPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            return await management.add_project_partner(
                session, actor, decode_id(input.project_id, "Project", "projectId"),
                decode_id(input.organization_id, "Organization", "organizationId"))

        return _project(*await perform(info, action))

    @strawberry.mutation
    async def add_project_team(self, info: Info, input: ProjectTeamInput) -> ProjectPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            return await management.add_project_team(
                session, actor, decode_id(input.project_id, "Project", "projectId"),
                decode_id(input.team_id, "Team", "teamId"))

        return _project(*await perform(info, action))

    @strawberry.mutation(description="A call-up (召集): invite a team's members to a task, up to a quota; a commando "
                                     "team (青年突击队) only while it is active")
    async def call_up_team(self, info: Info, input: CallUpTeamInput) -> InviteVolunteersPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            return await management.call_up_team(session, actor, decode_id(input.team_id, "Team", "teamId"),
                                                  decode_id(input.task_id, "Task", "taskId"), input.quota)

        return invite_payload(*await perform(info, action))
