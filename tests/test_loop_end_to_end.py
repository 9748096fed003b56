"""The whole loop through GraphQL over HTTP, with the real worker crediting hours."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from tests import factories
from tests.conftest import GraphQL
from youthlink.db.models import Signup
from youthlink.db.models.enums import Role
from youthlink.graphql.ids import decode_id


async def eventually(check: Any, within: float = 30.0) -> Any:
    """Poll until `check()` returns something truthy (workers run asynchronously)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.3)


async def test_the_whole_loop(gql: GraphQL, db: Any, clean: None) -> None:
    # given an organization admin and a city admin, logged in through GraphQL
    org_admin, _ = await factories.admin(db)
    _, city_token = await factories.admin(db, Role.CITY_ADMIN, None)
    async with db.read() as session:
        from youthlink.db.models import Account

        phone = (await session.get(Account, org_admin.account_id)).phone  # type: ignore[union-attr]
    login = await gql("Login", {"input": {"phone": phone, "password": factories.PASSWORD}})
    org_token = login["data"]["login"]["token"]
    assert org_token and login["data"]["login"]["errors"] == []

    towns = (await gql("Towns"))["data"]["towns"]
    assert len(towns) == 16
    shitang = next(t for t in towns if t["name"] == "石塘镇")
    network = (await gql("OrganizationNetwork", token=org_token))["data"]["organizations"]["edges"]
    alliance = next(e["node"] for e in network if e["node"]["name"] == "温岭市社会治理志愿者联盟")

    # when the admin posts a task that started two hours ago and runs one more hour
    now = datetime.now(UTC)
    created = await gql("CreateTask", {"input": {
        "organizationId": alliance["id"], "projectId": None, "title": "海洋净滩 · 石塘", "description": "清理沙滩垃圾",
        "startsAt": (now - timedelta(hours=2)).isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat(),
        "slots": 5, "requiredSkills": [], "assignmentMode": "FIRST_COME",
        "location": {"address": "石塘镇金沙滩", "lat": 28.26, "lng": 121.61}, "townId": shitang["id"],
        "signupDeadline": None, "minAge": 16, "publish": True,
    }}, token=org_token)
    payload = created["data"]["createTask"]
    assert payload["errors"] == []
    task = payload["task"]
    assert task["status"] == "OPEN" and task["checkInCode"]

    # and two volunteers register, find it nearby and sign up
    tokens = []
    for name, phone in (("林晓", factories.next_phone()), ("陈浩", factories.next_phone())):
        reg = await gql("RegisterVolunteer", {"input": {
            "name": name, "phone": phone, "password": "a long passphrase", "birthDate": "2001-05-04",
            "townId": shitang["id"], "skills": ["first_aid", "swimming"], "location": {"lat": 28.27, "lng": 121.60},
        }})
        body = reg["data"]["registerVolunteer"]
        assert body["errors"] == [] and body["volunteer"]["phoneMasked"] == f"{phone[:3]}****{phone[-4:]}"
        assert body["volunteer"]["town"]["name"] == "石塘镇" and body["volunteer"]["starLevel"] == 0
        tokens.append(body["token"])

    near = {"lat": 28.27, "lng": 121.60, "radiusKm": 10}
    found = await gql("OpenTasks", {"filter": {"status": ["OPEN"], "near": near, "skills": ["swimming", "first_aid"]},
                                    "first": 20}, token=tokens[0])
    nodes = [e["node"] for e in found["data"]["tasks"]["edges"]]
    listed = next(n for n in nodes if n["id"] == task["id"])
    assert 0 < listed["distanceKm"] < 3 and listed["organization"]["name"] == "温岭市社会治理志愿者联盟"
    assert listed["town"]["name"] == "石塘镇"

    signups = []
    for token in tokens:
        signed = (await gql("SignUp", {"taskId": task["id"]}, token=token))["data"]["signUp"]
        assert signed["errors"] == [] and signed["signup"]["status"] == "CONFIRMED"
        signups.append(signed["signup"])
    assert signups[-1]["task"]["filledSlots"] == 2

    # then the roster shows both, masked, with the current check-in code
    roster = (await gql("TaskRoster", {"id": task["id"]}, token=org_token))["data"]["node"]
    assert roster["filledSlots"] == 2 and roster["signups"]["totalCount"] == 2
    assert all("****" in e["node"]["volunteer"]["phoneMasked"] for e in roster["signups"]["edges"])
    code = roster["checkInCode"]

    # when the first volunteer checks in on site with the code, and out again
    checked_in = (await gql("CheckIn", {"input": {"signupId": signups[0]["id"], "code": code,
                                                  "location": {"lat": 28.2601, "lng": 121.6102}}}, token=tokens[0]))
    assert checked_in["data"]["checkIn"]["errors"] == []
    assert checked_in["data"]["checkIn"]["signup"]["status"] == "CHECKED_IN"
    # (time travel: the volunteer arrived when the task started, two hours ago)
    async with db.unit_of_work() as session:
        await session.execute(update(Signup).where(Signup.id == decode_id(signups[0]["id"], "Signup", "id"))
                              .values(checked_in_at=now - timedelta(hours=2)))
    out = (await gql("CheckOut", {"input": {"signupId": signups[0]["id"], "location": {"lat": 28.26, "lng": 121.61}}},
                     token=tokens[0]))["data"]["checkOut"]
    assert out["errors"] == [] and out["signup"]["status"] == "COMPLETED" and out["signup"]["checkedOutAt"]

    # then a worker credits the hours: two hours of presence inside the window, pending approval
    async def credited() -> Any:
        me = (await gql("Me", token=tokens[0]))["data"]["viewer"]["volunteer"]
        return me["serviceRecords"]["edges"] or None

    records = await eventually(credited)
    record = records[0]["node"]
    assert record["status"] == "PENDING" and 1.9 <= record["hours"] <= 2.0
    assert record["task"]["title"] == "海洋净滩 · 石塘"

    # when the organization approves them
    approved = (await gql("ApproveServiceRecords", {"ids": [record["id"]]}, token=org_token))["data"]
    body = approved["approveServiceRecords"]
    assert body["errors"] == [] and body["records"][0]["status"] == "APPROVED" and body["records"][0]["approvedAt"]

    # then the volunteer's total and the city dashboard show them
    me = (await gql("Me", token=tokens[0]))["data"]["viewer"]["volunteer"]
    assert me["totalHours"] == record["hours"] and me["phone"].isdigit()
    assert me["signups"]["totalCount"] == 1
    year = str(now.year)

    async def dashboard() -> Any:  # a worker refreshes the statistics rollups after the approval
        stats = (await gql("CityOverview", {"from": f"{year}-01-01", "to": f"{year}-12-31"}, token=city_token))
        city = stats["data"]["cityStats"]
        return city if city["totalHours"] == record["hours"] else None

    city = await eventually(dashboard)
    assert city["totalHours"] == record["hours"] and city["activeVolunteers"] == 1
    assert city["registeredVolunteers"] == 2 and city["slotsFilled"] == 2 and city["slotsOffered"] == 5
    # the alliance, and the city committee above it (an organization's figures include its children's)
    assert {o["organization"]["name"] for o in city["byOrganization"]} >= {"温岭市社会治理志愿者联盟"}
    assert all(o["hours"] == record["hours"] for o in city["byOrganization"])
    assert city["byTown"][0]["town"]["name"] == "石塘镇"
    assert sum(m["hours"] for m in city["monthly"]) == record["hours"]
    assert {"level": 0, "volunteers": 2} in city["starLevels"]
