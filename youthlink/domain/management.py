"""The city's structure, managed by its admins: organizations, admins, teams and members, projects.

Who may do what (see the permission table in the README):
- city admins create top-level organizations and appoint any org admin;
- org admins manage their organization and its descendants: child organizations, org admins below them,
  teams, team members and leaders, projects and their partners and teams;
- team leaders add and remove members of their own team.
"""

from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.config import get_settings
from youthlink.db.models import (
    Account,
    Organization,
    Project,
    ProjectPartner,
    ProjectTeam,
    RoleGrant,
    Task,
    Team,
    TeamMember,
    Town,
    Volunteer,
)
from youthlink.db.models.enums import OrganizationKind, Role, TeamRole
from youthlink.domain import audit, organizations, policies
from youthlink.domain.actor import Actor
from youthlink.domain.inputs import CreateOrganization, CreateProject, CreateTeam
from youthlink.domain.matching import recommend
from youthlink.domain.matching.recommend import InviteResult
from youthlink.errors import Conflict, Forbidden, Invalid, NotFound

MAX_CALL_UP = 500


async def _require_org_admin(session: AsyncSession, actor: Actor, org_id: uuid.UUID, field: str) -> None:
    lineage = await organizations.lineage(session, org_id, field)
    policies.require_login(actor)
    if not policies.manages_organization(actor, lineage):
        raise Forbidden("FORBIDDEN", "无权管理该组织", field)


async def create_organization(session: AsyncSession, actor: Actor, command: CreateOrganization) -> Organization:
    if command.parent_id is None:
        policies.require_login(actor)
        if not actor.is_city_admin:
            raise Forbidden("FORBIDDEN", "仅市级管理员可创建顶级组织", "parentId")
        if command.kind is not OrganizationKind.CITY_COMMITTEE and await session.scalar(
            select(Organization.id).where(Organization.kind == OrganizationKind.CITY_COMMITTEE)
        ):
            raise Invalid("PARENT_REQUIRED", "请指定上级组织", "parentId")
    else:
        await _require_org_admin(session, actor, command.parent_id, "parentId")
    if command.town_id is not None and await session.get(Town, command.town_id) is None:
        raise NotFound("TOWN_NOT_FOUND", "镇街不存在", "townId")
    if await session.scalar(select(Organization.id).where(Organization.name == command.name)):
        raise Conflict("NAME_TAKEN", "名称已被使用", "name")
    org = Organization(name=command.name, kind=command.kind, parent_id=command.parent_id,
                       town_id=command.town_id, description=command.description, illustrative=False)
    session.add(org)
    await session.flush()
    audit.record(session, actor.account_id, "organization.create", "organization", org.id, name=org.name)
    return org


async def _account_of_volunteer(session: AsyncSession, volunteer_id: uuid.UUID, field: str) -> Account:
    account = await session.scalar(select(Account).where(Account.volunteer_id == volunteer_id))
    if account is None:
        raise NotFound("VOLUNTEER_NOT_FOUND", "志愿者不存在", field)
    return account


async def appoint_org_admin(session: AsyncSession, actor: Actor, org_id: uuid.UUID, volunteer_id: uuid.UUID
                            ) -> RoleGrant:
    """Make a registered volunteer an admin of an organization (city admins, or admins above it)."""
    await _require_org_admin(session, actor, org_id, "organizationId")
    account = await _account_of_volunteer(session, volunteer_id, "volunteerId")
    grant = await session.scalar(select(RoleGrant).where(
        RoleGrant.account_id == account.id, RoleGrant.role == Role.ORG_ADMIN, RoleGrant.organization_id == org_id))
    if grant is None:
        grant = RoleGrant(account_id=account.id, role=Role.ORG_ADMIN, organization_id=org_id,
                          granted_by=actor.account_id)
        session.add(grant)
        await session.flush()
        audit.record(session, actor.account_id, "role.grant", "account", account.id, role=Role.ORG_ADMIN.value,
                     organization_id=org_id)
    return grant


async def revoke_org_admin(session: AsyncSession, actor: Actor, org_id: uuid.UUID, volunteer_id: uuid.UUID) -> None:
    await _require_org_admin(session, actor, org_id, "organizationId")
    account = await _account_of_volunteer(session, volunteer_id, "volunteerId")
    if account.id == actor.account_id:
        raise Invalid("CANNOT_REVOKE_SELF", "不能撤销自己的管理员身份", "volunteerId")
    removed = await session.execute(delete(RoleGrant).where(
        RoleGrant.account_id == account.id, RoleGrant.role == Role.ORG_ADMIN, RoleGrant.organization_id == org_id))
    if not removed.rowcount:  # type: ignore[attr-defined]
        raise NotFound("ROLE_NOT_FOUND", "该志愿者不是此组织的管理员", "volunteerId")
    audit.record(session, actor.account_id, "role.revoke", "account", account.id, role=Role.ORG_ADMIN.value,
                 organization_id=org_id)


async def create_team(session: AsyncSession, actor: Actor, command: CreateTeam) -> Team:
    await _require_org_admin(session, actor, command.organization_id, "organizationId")
    if await session.scalar(select(Team.id).where(Team.organization_id == command.organization_id,
                                                  Team.name == command.name)):
        raise Conflict("NAME_TAKEN", "该组织下已有同名队伍", "name")
    team = Team(organization_id=command.organization_id, name=command.name, is_commando=command.is_commando,
                active_from=command.active_from, active_until=command.active_until)
    session.add(team)
    await session.flush()
    audit.record(session, actor.account_id, "team.create", "team", team.id, commando=team.is_commando)
    return team


async def _team(session: AsyncSession, team_id: uuid.UUID) -> Team:
    team = await session.get(Team, team_id)
    if team is None:
        raise NotFound("TEAM_NOT_FOUND", "队伍不存在", "teamId")
    return team


async def _require_team_manager(session: AsyncSession, actor: Actor, team: Team, leaders_too: bool) -> bool:
    """Passes org admins over the team (returns True) and, when `leaders_too`, the team's leaders (False)."""
    policies.require_login(actor)
    lineage = await organizations.lineage(session, team.organization_id)
    if policies.manages_organization(actor, lineage):
        return True
    if leaders_too and team.id in actor.led_team_ids:
        return False
    raise Forbidden("FORBIDDEN", "无权管理该队伍", "teamId")


async def add_team_member(session: AsyncSession, actor: Actor, team_id: uuid.UUID, volunteer_id: uuid.UUID
                          ) -> TeamMember:
    team = await _team(session, team_id)
    await _require_team_manager(session, actor, team, leaders_too=True)
    if await session.get(Volunteer, volunteer_id) is None:
        raise NotFound("VOLUNTEER_NOT_FOUND", "志愿者不存在", "volunteerId")
    member = await session.get(TeamMember, (team.id, volunteer_id))
    if member is not None:
        raise Conflict("ALREADY_MEMBER", "该志愿者已是队员", "volunteerId")
    member = TeamMember(team_id=team.id, volunteer_id=volunteer_id, role=TeamRole.MEMBER)
    session.add(member)
    await session.flush()
    audit.record(session, actor.account_id, "team.add_member", "team", team.id, volunteer_id=volunteer_id)
    return member


async def remove_team_member(session: AsyncSession, actor: Actor, team_id: uuid.UUID, volunteer_id: uuid.UUID
                             ) -> TeamMember:
    team = await _team(session, team_id)
    org_admin = await _require_team_manager(session, actor, team, leaders_too=True)
    member = await session.get(TeamMember, (team.id, volunteer_id))
    if member is None:
        raise NotFound("NOT_A_MEMBER", "该志愿者不是队员", "volunteerId")
    if member.role is TeamRole.LEADER and not org_admin:
        raise Forbidden("FORBIDDEN", "仅组织管理员可移除队长", "volunteerId")
    account = await session.scalar(select(Account).where(Account.volunteer_id == volunteer_id))
    if account is not None:
        await session.execute(delete(RoleGrant).where(RoleGrant.account_id == account.id,
                                                      RoleGrant.role == Role.TEAM_LEADER, RoleGrant.team_id == team.id))
    await session.delete(member)
    await session.flush()
    audit.record(session, actor.account_id, "team.remove_member", "team", team.id, volunteer_id=volunteer_id)
    return member


async def appoint_team_leader(session: AsyncSession, actor: Actor, team_id: uuid.UUID, volunteer_id: uuid.UUID
                              ) -> TeamMember:
    """A member becomes leader of the team (org admins only); their account gains the TEAM_LEADER role."""
    team = await _team(session, team_id)
    await _require_team_manager(session, actor, team, leaders_too=False)
    member = await session.get(TeamMember, (team.id, volunteer_id))
    if member is None:
        raise NotFound("NOT_A_MEMBER", "队长须先是队员", "volunteerId")
    account = await _account_of_volunteer(session, volunteer_id, "volunteerId")
    member.role = TeamRole.LEADER
    exists = await session.scalar(select(RoleGrant.id).where(
        RoleGrant.account_id == account.id, RoleGrant.role == Role.TEAM_LEADER, RoleGrant.team_id == team.id))
    if exists is None:
        session.add(RoleGrant(account_id=account.id, role=Role.TEAM_LEADER, team_id=team.id,
                              granted_by=actor.account_id))
    await session.flush()
    audit.record(session, actor.account_id, "role.grant", "account", account.id, role=Role.TEAM_LEADER.value,
                 team_id=team.id)
    return member


async def create_project(session: AsyncSession, actor: Actor, command: CreateProject) -> Project:
    await _require_org_admin(session, actor, command.owner_organization_id, "ownerOrganizationId")
    if await session.scalar(select(Project.id).where(Project.name == command.name)):
        raise Conflict("NAME_TAKEN", "名称已被使用", "name")
    project = Project(owner_organization_id=command.owner_organization_id, name=command.name,
                      description=command.description, outcome_kind=command.outcome_kind)
    session.add(project)
    await session.flush()
    audit.record(session, actor.account_id, "project.create", "project", project.id, name=project.name,
                 outcome_kind=command.outcome_kind.value if command.outcome_kind else None)
    return project


async def _owned_project(session: AsyncSession, actor: Actor, project_id: uuid.UUID) -> Project:
    project = await session.get(Project, project_id)
    if project is None:
        raise NotFound("PROJECT_NOT_FOUND", "项目不存在", "projectId")
    await _require_org_admin(session, actor, project.owner_organization_id, "projectId")
    return project


async def add_project_partner(session: AsyncSession, actor: Actor, project_id: uuid.UUID,
                              organization_id: uuid.UUID) -> Project:
    project = await _owned_project(session, actor, project_id)
    if await session.get(Organization, organization_id) is None:
        raise NotFound("ORGANIZATION_NOT_FOUND", "组织不存在", "organizationId")
    if organization_id == project.owner_organization_id:
        raise Invalid("ALREADY_OWNER", "该组织是项目主办方", "organizationId")
    if await session.get(ProjectPartner, (project.id, organization_id)) is not None:
        raise Conflict("ALREADY_PARTNER", "该组织已是合作方", "organizationId")
    session.add(ProjectPartner(project_id=project.id, organization_id=organization_id))
    await session.flush()
    audit.record(session, actor.account_id, "project.add_partner", "project", project.id,
                 organization_id=organization_id)
    return project


async def add_project_team(session: AsyncSession, actor: Actor, project_id: uuid.UUID, team_id: uuid.UUID
                           ) -> Project:
    """Teams of the owner or a partner organization (or their descendants) may serve a project."""
    project = await _owned_project(session, actor, project_id)
    team = await _team(session, team_id)
    partners = set((await session.scalars(
        select(ProjectPartner.organization_id).where(ProjectPartner.project_id == project.id))).all())
    lineage = await organizations.lineage(session, team.organization_id)
    if not ({project.owner_organization_id} | partners) & set(lineage):
        raise Invalid("TEAM_NOT_IN_PROJECT_ORGANIZATIONS", "该队伍不属于项目主办或合作组织", "teamId")
    if await session.get(ProjectTeam, (project.id, team.id)) is not None:
        raise Conflict("ALREADY_IN_PROJECT", "该队伍已在项目中", "teamId")
    session.add(ProjectTeam(project_id=project.id, team_id=team.id))
    await session.flush()
    audit.record(session, actor.account_id, "project.add_team", "project", project.id, team_id=team.id)
    return project



async def call_up_team(session: AsyncSession, actor: Actor, team_id: uuid.UUID, task_id: uuid.UUID, quota: int
                       ) -> InviteResult:
    """A call-up (召集): invite a team's members to a task, up to `quota` of them — a commando team (青年突击队)
    only while it is active. Leaders come first, then members by how long they have served in the team."""
    if not 1 <= quota <= MAX_CALL_UP:
        raise Invalid("INVALID_QUOTA", f"召集名额须在 1 到 {MAX_CALL_UP} 之间", "quota")
    team = await _team(session, team_id)
    await _require_team_manager(session, actor, team, leaders_too=True)
    task = await session.get(Task, task_id)
    if task is None:
        raise NotFound("TASK_NOT_FOUND", "任务不存在", "taskId")
    if team.is_commando:
        day = task.starts_at.astimezone(ZoneInfo(get_settings().city_timezone)).date()
        if (team.active_from and day < team.active_from) or (team.active_until and day > team.active_until):
            raise Conflict("TEAM_NOT_ACTIVE", "突击队在该任务日期不在组建期内", "teamId")
    members = (await session.scalars(
        select(TeamMember.volunteer_id).where(TeamMember.team_id == team.id)
        .order_by(TeamMember.role, TeamMember.joined_at, TeamMember.volunteer_id)  # "LEADER" < "MEMBER"
    )).all()
    if not members:
        raise Invalid("TEAM_HAS_NO_MEMBERS", "该队伍还没有队员", "teamId")
    result = await recommend.invite_volunteers(session, actor, task.id, list(members)[:recommend.MAX_INVITATIONS],
                                               quota=quota)
    audit.record(session, actor.account_id, "team.call_up", "team", team.id, task_id=task.id, quota=quota,
                 invited=len(result.invited))
    return result
