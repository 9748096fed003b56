"""Certificates of volunteer service through the HTTP API: requested by the volunteer, issued by the
organization, downloaded as a PDF whose Chinese text is extracted back, verified publicly, revoked."""

from __future__ import annotations

import io
import re
from decimal import Decimal
from typing import Any

import httpx
from pypdf import PdfReader

from tests import factories
from tests.conftest import GraphQL
from tests.test_hours_ledger import approve, credited_record
from youthlink.domain import hours
from youthlink.domain.inputs import AdjustServiceRecord
from youthlink.graphql.ids import encode_id

REQUEST = """
mutation Request($input: RequestCertificateInput!) {
  requestCertificate(input: $input) { certificate { id status hours } errors { field message code } }
}"""
ISSUE = """
mutation Issue($input: IssueCertificateInput!) {
  issueCertificate(input: $input) {
    certificate { id status number hours periodFrom periodTo verificationCode verifyUrl downloadUrl organizationName }
    errors { field message code }
  }
}"""
REVOKE = """
mutation Revoke($input: RevokeCertificateInput!) {
  revokeCertificate(input: $input) { certificate { id status revokedAt } errors { field message code } }
}"""
MINE = "{ certificates { id status number hours } }"
INBOX = "{ notifications { unreadCount items { kind payload } } }"


async def test_a_certificate_from_request_to_verification(gql: GraphQL, http: httpx.AsyncClient, db: Any,
                                                         clean: None) -> None:
    # given a volunteer with two approved records at the alliance (3 h, and 2 h corrected by +0.5 h)
    admin, admin_token = await factories.admin(db)
    volunteer, token = await factories.volunteer(db)
    assert volunteer.volunteer_id is not None
    first = await credited_record(db, admin, volunteer.volunteer_id, days_ago=10)
    second = await credited_record(db, admin, volunteer.volunteer_id, days_ago=5, hours_long=2)
    await approve(db, admin, first.id, second.id)
    async with db.unit_of_work() as session:
        await hours.adjust_record(session, admin, AdjustServiceRecord(
            record_id=second.id, hours=Decimal("0.5"), reason="签退漏记半小时"))
    org = await factories.organization(db)

    # when the volunteer asks the alliance for a certificate
    asked = (await gql(REQUEST, {"input": {"organizationId": encode_id("Organization", org.id)}},
                       token=token))["data"]["requestCertificate"]
    assert asked["errors"] == [] and asked["certificate"]["status"] == "REQUESTED"
    certificate_id = asked["certificate"]["id"]
    # (asking twice before it is issued is refused)
    again = (await gql(REQUEST, {"input": {"organizationId": encode_id("Organization", org.id)}},
                       token=token))["data"]["requestCertificate"]
    assert [e["code"] for e in again["errors"]] == ["CERTIFICATE_PENDING"]

    # and the alliance's admin, notified, issues it
    inbox = (await gql(INBOX, token=admin_token))["data"]["notifications"]
    assert inbox["unreadCount"] == 1 and inbox["items"][0]["kind"] == "certificate.requested"
    issued = (await gql(ISSUE, {"input": {"certificateId": certificate_id}}, token=admin_token))["data"]
    body = issued["issueCertificate"]
    assert body["errors"] == []
    cert = body["certificate"]

    # then it states the ledger's hours for that organization and the service period
    assert cert["status"] == "ISSUED" and cert["hours"] == 5.5
    assert re.fullmatch(r"WLZYFW\d{11}", cert["number"]) and len(cert["verificationCode"]) == 12
    assert cert["verifyUrl"].endswith(f"/verify/{cert['verificationCode']}")
    assert cert["organizationName"] == "温岭市社会治理志愿者联盟"
    assert cert["periodFrom"] < cert["periodTo"]

    # when the volunteer downloads the PDF
    response = await http.get(cert["downloadUrl"], headers={"Authorization": f"Bearer {token}"})

    # then it is a PDF whose Chinese text reads back: masked name and ID, hours, period, content, issuer,
    # number, and the verification code with the page the QR code points to
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    text = PdfReader(io.BytesIO(response.content)).pages[0].extract_text()
    assert "志愿服务证明" in text and "兹证明志愿者 志**" in text
    phone = await _phone(db, volunteer.volunteer_id)
    assert f"{phone[:3]}****{phone[-4:]}" in text and phone not in text
    assert "累计服务时长 5.5 小时" in text and "参加志愿服务 2 次" in text
    assert f"于 {cert['periodFrom']} 至 {cert['periodTo']}" in text and "海洋净滩 · 石塘" in text
    assert "出具单位：温岭市社会治理志愿者联盟" in text and cert["number"] in text
    assert f"验证码：{cert['verificationCode']}" in text and cert["verifyUrl"] in text

    # and anyone can verify it without logging in: masked name, hours, issuer, date
    page = await http.get(f"/verify/{cert['verificationCode']}")
    assert page.status_code == 200
    assert "该证明真实有效" in page.text and "志**" in page.text and "5.5 小时" in page.text
    assert "温岭市社会治理志愿者联盟" in page.text and cert["number"] in page.text
    assert 'id="volunteer">志**<' in page.text and phone[-4:] not in page.text

    # but nobody else can download it, and an unknown code is not found
    _, stranger = await factories.volunteer(db)
    assert (await http.get(cert["downloadUrl"], headers={"Authorization": f"Bearer {stranger}"})).status_code == 404
    assert (await http.get(cert["downloadUrl"])).status_code == 401
    assert (await http.get("/verify/ABCDEFGHJKLM")).status_code == 404

    # when the alliance revokes it
    revoked = (await gql(REVOKE, {"input": {"certificateId": certificate_id, "reason": "时长核查有误"}},
                         token=admin_token))["data"]["revokeCertificate"]
    assert revoked["errors"] == [] and revoked["certificate"]["status"] == "REVOKED"

    # then the public page says so, and so does the PDF
    page = await http.get(f"/verify/{cert['verificationCode'].lower()}")
    assert page.status_code == 200 and "已于" in page.text and "撤销" in page.text and "真实有效" not in page.text
    pdf = await http.get(cert["downloadUrl"], headers={"Authorization": f"Bearer {token}"})
    assert "已撤销" in PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    mine = (await gql(MINE, token=token))["data"]["certificates"]
    assert [c["status"] for c in mine] == ["REVOKED"]


async def test_only_an_organization_that_recorded_hours_can_be_asked(gql: GraphQL, db: Any, clean: None) -> None:
    # given a volunteer whose hours at the alliance are still pending
    admin, _ = await factories.admin(db)
    volunteer, token = await factories.volunteer(db)
    assert volunteer.volunteer_id is not None
    await credited_record(db, admin, volunteer.volunteer_id)
    medics = await factories.organization(db, "温岭市医疗青年联合会")
    alliance = await factories.organization(db)

    # when they ask either organization, then both refuse: no approved hours there
    for org in (alliance, medics):
        body = (await gql(REQUEST, {"input": {"organizationId": encode_id("Organization", org.id)}},
                          token=token))["data"]["requestCertificate"]
        assert [e["code"] for e in body["errors"]] == ["NO_HOURS"]


async def test_another_organization_cannot_issue(gql: GraphQL, db: Any, clean: None) -> None:
    admin, _ = await factories.admin(db)
    _, outsider_token = await factories.admin(db, org_name="温岭市医疗青年联合会")
    volunteer, token = await factories.volunteer(db)
    assert volunteer.volunteer_id is not None
    record = await credited_record(db, admin, volunteer.volunteer_id)
    await approve(db, admin, record.id)
    org = await factories.organization(db)
    asked = (await gql(REQUEST, {"input": {"organizationId": encode_id("Organization", org.id)}},
                       token=token))["data"]["requestCertificate"]
    body = (await gql(ISSUE, {"input": {"certificateId": asked["certificate"]["id"]}},
                      token=outsider_token))["data"]["issueCertificate"]
    assert body["certificate"] is None and [e["code"] for e in body["errors"]] == ["FORBIDDEN"]


async def _phone(db: Any, volunteer_id: Any) -> str:
    from youthlink.db.models import Volunteer

    async with db.read() as session:
        row = await session.get(Volunteer, volunteer_id)
    assert row is not None
    return row.phone
