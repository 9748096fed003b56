"""Accounts: login throttling, logout, personal data (masking, encryption, audit), guardian consent."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from tests import factories
from tests import services as svc
from tests.conftest import GraphQL, operation
from youthlink.db.models import AuditEntry, Volunteer
from youthlink.db.models.enums import Role
from youthlink.domain import management
from youthlink.graphql.ids import encode_id

LOGIN = operation("Login")
ME_WITH_ID = "query { viewer { volunteer { id phone idCard } } }"
VOLUNTEER = "query($id: ID!) { node(id: $id) { ... on Volunteer { id phone phoneMasked idCard } } }"


def id_card(serial: int) -> str:
    """A valid mainland ID number (GB 11643 check digit) for a person born 2000-01-01 in Wenling."""
    body = f"331081200001{serial % 10_000:04d}1"[:17]
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


async def register(gql: GraphQL, **extra: Any) -> tuple[str, str, dict[str, Any]]:
    phone = factories.next_phone()
    body = await gql("RegisterVolunteer", {"input": {
        "name": "林晓", "phone": phone, "password": factories.PASSWORD, "birthDate": "2001-05-04", **extra}})
    payload = body["data"]["registerVolunteer"]
    return phone, payload["token"], payload


async def test_five_failures_throttle_a_phone_even_with_the_right_password(gql: GraphQL) -> None:
    # given a registered volunteer
    phone, _, _ = await register(gql)

    # when someone tries five wrong passwords
    for _ in range(5):
        wrong = await gql(LOGIN, {"input": {"phone": phone, "password": "not the password"}})
        assert wrong["data"]["login"]["errors"][0]["code"] == "INVALID_CREDENTIALS"

    # then even the right password is refused for a while, with its own code
    blocked = await gql(LOGIN, {"input": {"phone": phone, "password": factories.PASSWORD}})
    assert blocked["data"]["login"]["token"] is None
    assert blocked["data"]["login"]["errors"][0]["code"] == "LOGIN_THROTTLED"

    # and another phone from the same address is not affected
    other, _, _ = await register(gql)
    ok = await gql(LOGIN, {"input": {"phone": other, "password": factories.PASSWORD}})
    assert ok["data"]["login"]["token"]


async def _forget_failures_from_this_address(services: svc.Services) -> None:
    # The counters are shared by every test API on this machine's address.
    client = aioredis.from_url(services.redis_url or services.broker_url)
    await client.delete("youthlink:login-failures:addr:127.0.0.1")
    await client.aclose()


async def test_many_failures_from_one_address_throttle_that_address(services: svc.Services, worker: Any,
                                                                    gql: GraphQL) -> None:
    # given an API whose per-address limit is 3, and no recent failures from this address
    api = svc.start_api(services, name="api-throttle", YOUTHLINK_LOGIN_MAX_FAILURES_PER_ADDRESS="3")
    phones = [(await register(gql))[0] for _ in range(4)]
    await _forget_failures_from_this_address(services)
    try:
        async with httpx.AsyncClient(base_url=api, timeout=30) as client:
            async def login(phone: str, password: str) -> dict[str, Any]:
                response = await client.post("/graphql", json={
                    "query": LOGIN, "variables": {"input": {"phone": phone, "password": password}}})
                return response.json()["data"]["login"]

            # when three different phones fail from one address
            for phone in phones[:3]:
                assert (await login(phone, "wrong password!"))["errors"][0]["code"] == "INVALID_CREDENTIALS"

            # then a fourth phone is throttled at that address, right password or not
            assert (await login(phones[3], factories.PASSWORD))["errors"][0]["code"] == "LOGIN_THROTTLED"
    finally:
        await _forget_failures_from_this_address(services)


async def test_logout_revokes_the_token(gql: GraphQL) -> None:
    # given a logged-in volunteer
    phone, token, _ = await register(gql)
    assert (await gql("Me", token=token))["data"]["viewer"]["volunteer"]

    # when they log out
    out = await gql("mutation { logout { ok errors { code } } }", token=token)
    assert out["data"]["logout"] == {"ok": True, "errors": []}

    # then the old token no longer works, and a new login does
    after = await gql("Me", token=token, expect_errors=True)
    assert after["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    fresh = (await gql(LOGIN, {"input": {"phone": phone, "password": factories.PASSWORD}}))["data"]["login"]
    assert (await gql("Me", token=fresh["token"]))["data"]["viewer"]["volunteer"]


async def test_id_card_is_encrypted_masked_and_audited(gql: GraphQL, db: Any, services: svc.Services,
                                                       clean: None) -> None:
    # given a volunteer who registers with an ID-card number and serves with an organization
    number = id_card(1234)
    phone, token, payload = await register(gql, idCard=number)
    assert payload["errors"] == []
    volunteer_id = payload["volunteer"]["id"]
    admin, admin_token = await factories.admin(db)
    other_admin, other_token = await factories.admin(db, org_name="温岭市医疗青年联合会")
    task = await factories.task(db, admin, slots=3)
    await gql("SignUp", {"taskId": encode_id("Task", task.id)}, token=token)

    # then the number is not stored in clear
    async with db.read() as session:
        stored = await session.scalar(select(Volunteer).where(Volunteer.phone == phone))
    assert stored is not None and stored.id_card_cipher and number.encode() not in stored.id_card_cipher
    assert number not in (stored.id_card_hash or "")

    # and the person sees it whole
    me = (await gql(ME_WITH_ID, token=token))["data"]["viewer"]["volunteer"]
    assert me["idCard"] == number and me["phone"] == phone

    # and the admin of the organization they serve with sees it whole, leaving an audit row
    seen = (await gql(VOLUNTEER, {"id": volunteer_id}, token=admin_token))["data"]["node"]
    assert seen["idCard"] == number and seen["phone"] == phone
    async with db.read() as session:
        audits = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "volunteer.read_id_card"))).all()
    assert [a.actor_account_id for a in audits] == [admin.account_id]

    # and an admin of another organization does not see the volunteer at all
    assert (await gql(VOLUNTEER, {"id": volunteer_id}, token=other_token))["data"]["node"] is None
    assert other_admin.account_id != admin.account_id

    # and a leader of the volunteer's team sees them masked
    team = await _team_with_leader(db, admin, stored.id)
    leader_token = team
    masked = (await gql(VOLUNTEER, {"id": volunteer_id}, token=leader_token))["data"]["node"]
    assert masked["idCard"] == f"{number[:4]}**********{number[-4:]}"
    assert masked["phone"] == f"{phone[:3]}****{phone[-4:]}"

    # and neither number reaches the server's log
    log = (services.folder / "api.log").read_text()
    assert phone not in log and number not in log


async def _team_with_leader(db: Any, admin: Any, member_id: Any) -> str:
    """A team of the admin's organization with the volunteer as member and a fresh leader; the leader's token."""
    from youthlink.domain.inputs import CreateTeam

    leader, leader_token = await factories.volunteer(db)
    org = await factories.organization(db)
    async with db.unit_of_work() as session:
        team = await management.create_team(session, admin, CreateTeam(organization_id=org.id, name="河小二一队"))
        await management.add_team_member(session, admin, team.id, member_id)
        assert leader.volunteer_id is not None
        await management.add_team_member(session, admin, team.id, leader.volunteer_id)
        await management.appoint_team_leader(session, admin, team.id, leader.volunteer_id)
    return leader_token


_VALID = id_card(777)
_WRONG_CHECK_DIGIT = _VALID[:-1] + ("0" if _VALID[-1] != "0" else "1")


@pytest.mark.parametrize("raw", ["33108120000101123", _WRONG_CHECK_DIGIT, "33108120000101123A"],
                         ids=["too-short", "wrong-check-digit", "letter"])
async def test_a_malformed_id_card_is_refused(gql: GraphQL, db: Any, raw: str) -> None:
    phone, _, payload = await register(gql, idCard=raw)
    assert payload["errors"] == [{"field": "idCard", "message": payload["errors"][0]["message"],
                                  "code": "INVALID_ID_CARD"}]
    async with db.read() as session:
        assert await session.scalar(select(Volunteer.id).where(Volunteer.phone == phone)) is None


async def test_an_id_card_belongs_to_one_volunteer(gql: GraphQL) -> None:
    number = id_card(4321)
    assert (await register(gql, idCard=number))[2]["errors"] == []
    _, _, second = await register(gql, idCard=number)
    assert second["errors"][0]["code"] == "ID_CARD_TAKEN"
    _, token, _ = await register(gql)
    later = await gql("mutation($n: String!) { setIdCard(input: {idCard: $n}) { errors { code field } } }",
                      {"n": number}, token=token)
    assert later["data"]["setIdCard"]["errors"] == [{"code": "ID_CARD_TAKEN", "field": "idCard"}]


async def test_a_minor_signs_up_once_a_guardian_consent_is_recorded(gql: GraphQL, db: Any, clean: None) -> None:
    # given a 15-year-old registered without a guardian's consent, and an open task
    today = date.today()
    _, token, payload = await register(gql)
    async with db.unit_of_work() as session:
        from youthlink.graphql.ids import decode_id

        volunteer = await session.get(Volunteer, decode_id(payload["volunteer"]["id"], "Volunteer", "id"))
        assert volunteer is not None
        volunteer.birth_date = today.replace(year=today.year - 15)
    admin, _ = await factories.admin(db, Role.CITY_ADMIN, None)
    task = await factories.task(db, admin)
    task_id = encode_id("Task", task.id)

    # when they sign up, they are refused until the consent is recorded
    refused = (await gql("SignUp", {"taskId": task_id}, token=token))["data"]["signUp"]
    assert refused["errors"][0]["code"] == "GUARDIAN_CONSENT_REQUIRED"
    consent = await gql("mutation { recordGuardianConsent(input: {guardianName: \"林母\"}) "
                        "{ volunteer { guardianConsentRecorded } errors { code } } }", token=token)
    assert consent["data"]["recordGuardianConsent"]["volunteer"]["guardianConsentRecorded"] is True

    # then the sign-up goes through
    accepted = (await gql("SignUp", {"taskId": task_id}, token=token))["data"]["signUp"]
    assert accepted["errors"] == [] and accepted["signup"]["status"] == "CONFIRMED"
