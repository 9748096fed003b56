"""The linked graph: organizations, teams, members, projects, tasks and hours, walked in one query, and
managed through the API."""

from __future__ import annotations

from typing import Any

from tests import factories
from tests.conftest import GraphQL
from youthlink.db.models.enums import Role
from youthlink.domain import signups
from youthlink.graphql.ids import encode_id

WALK = """
query Walk($org: ID!) {
  node(id: $org) {
    ... on Organization {
      name kind parent { name } children(first: 5) { totalCount }
      teams(first: 10) {
        totalCount
        edges { node {
          name isCommando activeFrom activeUntil memberCount
          members(first: 10) { totalCount edges { node { role volunteer { name phoneMasked
            teams(first: 5) { edges { node { role team { name } } } } } } } }
          projects(first: 5) { edges { node { name } } }
        } }
      }
      projects(first: 10) { edges { node { name organizations { role organization { name } }
        teams(first: 5) { totalCount } tasks(first: 5) { totalCount } stats { totalHours volunteers } } } }
      tasks(first: 10) { totalCount edges { node { title signups(first: 5) { totalCount } } } }
    }
  }
}
"""

MANAGE = {
    "createTeam": "mutation($i: CreateTeamInput!) { createTeam(input: $i) { team { id name isCommando } "
                  "errors { field message code } } }",
    "addTeamMember": "mutation($i: TeamVolunteerInput!) { addTeamMember(input: $i) { membership { id role } "
                     "errors { field message code } } }",
    "appointTeamLeader": "mutation($i: TeamVolunteerInput!) { appointTeamLeader(input: $i) "
                         "{ membership { role } errors { field message code } } }",
    "createProject": "mutation($i: CreateProjectInput!) { createProject(input: $i) { project { id } "
                     "errors { field message code } } }",
    "addProjectPartner": "mutation($i: ProjectOrganizationInput!) { addProjectPartner(input: $i) "
                         "{ project { organizations { role organization { name } } } errors { field message code } } }",
    "addProjectTeam": "mutation($i: ProjectTeamInput!) { addProjectTeam(input: $i) { project { id } "
                      "errors { field message code } } }",
}


async def test_an_org_admin_builds_a_commando_team_and_a_project_and_walks_the_graph(gql: GraphQL, db: Any,
                                                                                      clean: None) -> None:
    # given the admin of the emergency-rescue organization and two registered volunteers
    org = await factories.organization(db, "温岭市青年应急救援队")
    partner = await factories.organization(db, "共青团松门镇委员会")
    admin, token = await factories.admin(db, Role.ORG_ADMIN, org.name)
    (first_id, _), (second_id, second_token) = await factories.many_volunteers(db, 2)
    org_id = encode_id("Organization", org.id)

    # when they form a commando team (青年突击队) with a period, add both volunteers and appoint a leader
    commando = {"organizationId": org_id, "name": "防台突击队", "isCommando": True}
    refused = await gql(MANAGE["createTeam"], {"i": commando}, token=token)
    assert refused["data"]["createTeam"]["errors"][0]["code"] == "COMMANDO_PERIOD_REQUIRED"
    made = await gql(MANAGE["createTeam"], {"i": {"organizationId": org_id, "name": "防台突击队", "isCommando": True,
                                                  "activeFrom": "2026-12-01", "activeUntil": "2026-12-31"}},
                     token=token)
    team = made["data"]["createTeam"]["team"]
    assert team["isCommando"] is True
    for volunteer_id in (first_id, second_id):
        added = await gql(MANAGE["addTeamMember"], {"i": {"teamId": team["id"],
                                                          "volunteerId": encode_id("Volunteer", volunteer_id)}},
                          token=token)
        assert added["data"]["addTeamMember"]["membership"]["role"] == "MEMBER"
    again = await gql(MANAGE["addTeamMember"], {"i": {"teamId": team["id"],
                                                      "volunteerId": encode_id("Volunteer", first_id)}}, token=token)
    assert again["data"]["addTeamMember"]["errors"][0]["code"] == "ALREADY_MEMBER"
    led = await gql(MANAGE["appointTeamLeader"], {"i": {"teamId": team["id"],
                                                        "volunteerId": encode_id("Volunteer", second_id)}},
                    token=token)
    assert led["data"]["appointTeamLeader"]["membership"]["role"] == "LEADER"

    # and they start a project with a partner organization and the team
    project = (await gql(MANAGE["createProject"], {"i": {"ownerOrganizationId": org_id, "name": "防台抗台"}},
                         token=token))["data"]["createProject"]["project"]
    partnered = await gql(MANAGE["addProjectPartner"], {"i": {"projectId": project["id"],
                                                              "organizationId": encode_id("Organization", partner.id)}},
                          token=token)
    organizations = partnered["data"]["addProjectPartner"]["project"]["organizations"]
    assert [(o["role"], o["organization"]["name"]) for o in organizations] == [
        ("OWNER", "温岭市青年应急救援队"), ("PARTNER", "共青团松门镇委员会")]
    joined = await gql(MANAGE["addProjectTeam"], {"i": {"projectId": project["id"], "teamId": team["id"]}},
                       token=token)
    assert joined["data"]["addProjectTeam"]["errors"] == []

    # and a task of the organization gets a sign-up
    task = await factories.task(db, admin, organization_id=org.id)
    volunteer_actor = await _actor_of(db, second_token)
    async with db.unit_of_work() as session:
        await signups.sign_up(session, volunteer_actor, task.id)

    # then one query walks organization → teams → members → their teams, projects → partners, tasks → sign-ups
    walked = (await gql(WALK, {"org": org_id}, token=token))["data"]["node"]
    assert walked["parent"]["name"] == "共青团温岭市委员会" and walked["kind"] == "AFFILIATED_ORG"
    commando = next(e["node"] for e in walked["teams"]["edges"] if e["node"]["name"] == "防台突击队")
    assert commando["memberCount"] == 2 and commando["members"]["totalCount"] == 2
    assert commando["activeFrom"] == "2026-12-01" and commando["activeUntil"] == "2026-12-31"
    roles = sorted(e["node"]["role"] for e in commando["members"]["edges"])
    assert roles == ["LEADER", "MEMBER"]
    member_teams = commando["members"]["edges"][0]["node"]["volunteer"]["teams"]["edges"]
    assert [e["node"]["team"]["name"] for e in member_teams] == ["防台突击队"]
    assert [e["node"]["name"] for e in commando["projects"]["edges"]] == ["防台抗台"]
    owned = next(e["node"] for e in walked["projects"]["edges"] if e["node"]["name"] == "防台抗台")
    assert owned["teams"]["totalCount"] == 1
    assert walked["tasks"]["totalCount"] == 1 and walked["tasks"]["edges"][0]["node"]["signups"]["totalCount"] == 1

    # and the partner sees the project among its own
    partner_view = (await gql(WALK, {"org": encode_id("Organization", partner.id)}, token=token))["data"]["node"]
    assert "防台抗台" in [e["node"]["name"] for e in partner_view["projects"]["edges"]]


async def _actor_of(db: Any, token: str) -> Any:
    from youthlink.domain import accounts

    async with db.read() as session:
        return await accounts.actor_from_token(session, token)


async def test_volunteers_can_be_found_by_team_town_skill_and_activity(gql: GraphQL, db: Any, clean: None) -> None:
    # given an admin's organization with a volunteer who has a skill and another who has none
    admin, token = await factories.admin(db)
    swimmer, _ = await factories.volunteer(db, skills=["swimming"])
    other, _ = await factories.volunteer(db)
    task = await factories.task(db, admin)
    for volunteer in (swimmer, other):
        async with db.unit_of_work() as session:
            await signups.add_participant(session, admin, task.id, volunteer.volunteer_id)
    query = ("query($f: VolunteerFilter) { volunteers(filter: $f, first: 10) { totalCount "
             "edges { node { id skills } } } }")

    # when the admin filters by skill, then only the swimmer comes back
    found = (await gql(query, {"f": {"skills": ["swimming"]}}, token=token))["data"]["volunteers"]
    assert found["totalCount"] == 1 and found["edges"][0]["node"]["skills"] == ["swimming"]
    everyone = (await gql(query, {"f": None}, token=token))["data"]["volunteers"]
    assert everyone["totalCount"] == 2
    active = (await gql(query, {"f": {"activeSince": "2020-01-01"}}, token=token))["data"]["volunteers"]
    assert active["totalCount"] == 0, "no approved hours yet"

    # and an admin of another organization sees none of them
    _, other_token = await factories.admin(db, org_name="温岭市医疗青年联合会")
    assert (await gql(query, {"f": None}, token=other_token))["data"]["volunteers"]["totalCount"] == 0


async def test_connections_page_with_cursors(gql: GraphQL, db: Any, clean: None) -> None:
    # given 5 open tasks
    admin, _ = await factories.admin(db, Role.CITY_ADMIN, None)
    from datetime import timedelta

    for i in range(5):
        await factories.task(db, admin, starts_in=timedelta(days=3, hours=i))
    query = ("query($after: String) { tasks(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor } "
             "edges { node { id } } } }")

    # when a client pages through them two at a time, then it sees each once, in order, and knows when to stop
    seen: list[str] = []
    after = None
    while True:
        page = (await gql(query, {"after": after}))["data"]["tasks"]
        assert page["totalCount"] == 5
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == 5 == len(set(seen))
    bad = await gql(query, {"after": "not-a-cursor"}, expect_errors=True)
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"
    too_many = await gql("{ tasks(first: 101) { totalCount } }", expect_errors=True)
    assert too_many["errors"][0]["extensions"]["code"] == "INVALID_PAGE_SIZE"
