"""No N+1: every client operation runs a fixed number of SQL statements, whatever the page size."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, event, insert, select

from tests import factories
from tests.conftest import operation
from youthlink.api.app import create_app
from youthlink.config import get_settings
from youthlink.db.models import Organization, Signup, Team, TeamMember, Volunteer
from youthlink.db.models.enums import OrganizationKind, Role, SignupStatus
from youthlink.graphql.ids import encode_id

PREFIX = "0语句计数测试组织"  # sorts before every reference organization


class Counter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)


@pytest.fixture(scope="module")
async def in_process() -> AsyncIterator[tuple[httpx.AsyncClient, Counter]]:
    """The real app in this process, so its engine's statements can be counted."""
    app = create_app(get_settings())
    counter = Counter()
    async with app.router.lifespan_context(app):
        event.listen(app.state.db.engine.sync_engine, "before_cursor_execute", counter)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as client:
            yield client, counter


async def count(client: httpx.AsyncClient, counter: Counter, name: str, variables: dict[str, Any],
                token: str) -> tuple[int, dict[str, Any]]:
    counter.statements.clear()
    response = await client.post("/graphql", json={"query": operation(name), "variables": variables},
                                 headers={"Authorization": f"Bearer {token}"})
    body = response.json()
    assert "errors" not in body, body
    return len(counter.statements), body["data"]


async def test_organization_network_is_flat_for_50_organizations_of_100_teams(
    in_process: tuple[httpx.AsyncClient, Counter], db: Any, clean: None
) -> None:
    client, counter = in_process
    _, token = await factories.admin(db, Role.CITY_ADMIN, None)
    city = await factories.organization(db, "共青团温岭市委员会")
    members = await factories.many_volunteers(db, 3)
    org_ids = [uuid.uuid4() for _ in range(50)]

    async def add_teams(numbers: range) -> None:
        async with db.unit_of_work() as session:
            rows = [{"id": uuid.uuid4(), "organization_id": oid, "name": f"队{j:03d}", "is_commando": False}
                    for oid in org_ids for j in numbers]
            await session.execute(insert(Team), rows)
            await session.execute(insert(TeamMember), [
                {"team_id": t["id"], "volunteer_id": v, "role": "MEMBER"} for t in rows for v, _ in members])

    # given 50 organizations (sorting first) with one team each
    async with db.unit_of_work() as session:
        await session.execute(insert(Organization), [
            {"id": oid, "name": f"{PREFIX}{i:02d}", "kind": OrganizationKind.OTHER, "parent_id": city.id,
             "description": "", "illustrative": True} for i, oid in enumerate(org_ids)])
    await add_teams(range(1))
    try:
        small, _ = await count(client, counter, "OrganizationNetwork", {}, token)
        # and then 100 teams each, with members in every team
        await add_teams(range(1, 100))

        # when the console loads the whole network
        large, data = await count(client, counter, "OrganizationNetwork", {}, token)

        # then the statements are as few as for the small city, and the data is all there
        edges = data["organizations"]["edges"]
        assert len(edges) == 50
        ours = [e["node"] for e in edges if e["node"]["name"].startswith(PREFIX)]
        assert ours and all(o["teams"]["totalCount"] == 100 and len(o["teams"]["edges"]) == 100 for o in ours)
        assert all(t["node"]["memberCount"] == 3 for t in ours[0]["teams"]["edges"])
        assert large == small <= 10, counter.statements
    finally:
        async with db.unit_of_work() as session:
            await session.execute(delete(TeamMember).where(TeamMember.team_id.in_(
                select(Team.id).where(Team.organization_id.in_(org_ids)))))
            await session.execute(delete(Team).where(Team.organization_id.in_(org_ids)))
            await session.execute(delete(Organization).where(Organization.id.in_(org_ids)))


async def test_roster_me_and_open_tasks_do_not_grow_with_the_page(
    in_process: tuple[httpx.AsyncClient, Counter], db: Any, clean: None
) -> None:
    client, counter = in_process
    admin, admin_token = await factories.admin(db)
    small_task = await factories.task(db, admin, slots=100)
    big_task = await factories.task(db, admin, slots=100)
    volunteers = await factories.many_volunteers(db, 60)
    async with db.unit_of_work() as session:
        await session.execute(insert(Signup), [
            {"id": uuid.uuid4(), "task_id": small_task.id if i < 2 else big_task.id, "volunteer_id": v,
             "status": SignupStatus.CONFIRMED} for i, (v, _) in enumerate(volunteers)])
        vols = (await session.scalars(select(Volunteer).where(Volunteer.id.in_([v for v, _ in volunteers])))).all()
        assert len(vols) == 60

    roster_small, _ = await count(client, counter, "TaskRoster", {"id": encode_id("Task", small_task.id)}, admin_token)
    roster_big, data = await count(client, counter, "TaskRoster", {"id": encode_id("Task", big_task.id)}, admin_token)
    assert data["node"]["signups"]["totalCount"] == 58
    assert roster_big == roster_small, counter.statements

    tasks = [await factories.task(db, admin, slots=5) for _ in range(20)]
    assert tasks
    open_one, _ = await count(client, counter, "OpenTasks", {"first": 1}, volunteers[0][1])
    open_many, data = await count(client, counter, "OpenTasks", {"first": 20}, volunteers[0][1])
    assert len(data["tasks"]["edges"]) == 20 and open_many == open_one, counter.statements

    me_small, _ = await count(client, counter, "Me", {}, volunteers[0][1])
    me_big, data = await count(client, counter, "Me", {}, volunteers[5][1])
    assert me_big == me_small, counter.statements
