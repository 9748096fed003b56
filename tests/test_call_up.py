"""A commando team's call-up (召集): its members are invited to a task, up to a quota, while it is active."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from tests import factories
from tests.conftest import GraphQL
from youthlink.db.models.tasks import TaskInvitation
from youthlink.domain import management
from youthlink.domain.inputs import CreateTeam
from youthlink.graphql.ids import encode_id

CALL_UP = ("mutation($i: CallUpTeamInput!) { callUpTeam(input: $i) { invited skipped { volunteerId code } "
           "errors { field code } } }")


async def test_a_call_up_invites_the_team_up_to_the_quota_leader_first(gql: GraphQL, db: Any, clean: None) -> None:
    # given an active commando team of three (one of them its leader) and a task in its period
    admin, token = await factories.admin(db)
    org = await factories.organization(db)
    today = date.today()
    members = [await factories.volunteer(db) for _ in range(3)]
    async with db.unit_of_work() as session:
        team = await management.create_team(session, admin, CreateTeam(
            organization_id=org.id, name="防汛突击队", is_commando=True, active_from=today,
            active_until=today + timedelta(days=10)))
    for member, _ in members:  # one at a time: they joined in this order
        async with db.unit_of_work() as session:
            await management.add_team_member(session, admin, team.id, member.volunteer_id)  # type: ignore[arg-type]
    async with db.unit_of_work() as session:
        await management.appoint_team_leader(session, admin, team.id, members[2][0].volunteer_id)  # type: ignore[arg-type]
    task = await factories.task(db, admin, starts_in=timedelta(days=2))
    call = {"teamId": encode_id("Team", team.id), "taskId": encode_id("Task", task.id), "quota": 2}

    # when the admin calls the team up for two places
    result = (await gql(CALL_UP, {"i": call}, token=token))["data"]["callUpTeam"]

    # then the leader and the longest-serving member are invited, the third is skipped for the quota
    leader = encode_id("Volunteer", members[2][0].volunteer_id)  # type: ignore[arg-type]
    first = encode_id("Volunteer", members[0][0].volunteer_id)  # type: ignore[arg-type]
    assert result["errors"] == [] and result["invited"] == [leader, first]
    assert result["skipped"] == [{"volunteerId": encode_id("Volunteer", members[1][0].volunteer_id),  # type: ignore[arg-type]
                                  "code": "QUOTA_REACHED"}]
    async with db.read() as session:
        invited = set((await session.scalars(select(TaskInvitation.volunteer_id)
                                             .where(TaskInvitation.task_id == task.id))).all())
    assert invited == {members[2][0].volunteer_id, members[0][0].volunteer_id}

    # and calling up again invites nobody twice
    again = (await gql(CALL_UP, {"i": call}, token=token))["data"]["callUpTeam"]
    assert again["invited"] == [leader, first]
    async with db.read() as session:
        rows = (await session.scalars(select(TaskInvitation.id).where(TaskInvitation.task_id == task.id))).all()
    assert len(rows) == 2


async def test_a_commando_team_is_called_up_only_while_it_is_active(gql: GraphQL, db: Any, clean: None) -> None:
    admin, token = await factories.admin(db)
    org = await factories.organization(db)
    today = date.today()
    member, _ = await factories.volunteer(db)
    async with db.unit_of_work() as session:
        team = await management.create_team(session, admin, CreateTeam(
            organization_id=org.id, name="抗台突击队", is_commando=True, active_from=today,
            active_until=today + timedelta(days=3)))
        await management.add_team_member(session, admin, team.id, member.volunteer_id)  # type: ignore[arg-type]
    late_task = await factories.task(db, admin, starts_in=timedelta(days=20))
    call = {"teamId": encode_id("Team", team.id), "taskId": encode_id("Task", late_task.id), "quota": 5}
    refused = (await gql(CALL_UP, {"i": call}, token=token))["data"]["callUpTeam"]
    assert refused["errors"] == [{"field": "teamId", "code": "TEAM_NOT_ACTIVE"}]
    zero = (await gql(CALL_UP, {"i": {**call, "quota": 0}}, token=token))["data"]["callUpTeam"]
    assert zero["errors"] == [{"field": "quota", "code": "INVALID_QUOTA"}]
