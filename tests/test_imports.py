"""Bulk import of volunteers and team memberships from the city's spreadsheets (XLSX and CSV)."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import httpx
from openpyxl import Workbook
from sqlalchemy import func, select

from tests import factories
from tests.conftest import GraphQL
from youthlink.db.models import Team, TeamMember, Volunteer, VolunteerImport
from youthlink.domain import management
from youthlink.domain.inputs import CreateTeam
from youthlink.graphql.ids import encode_id

HEADER = ["姓名", "手机号", "出生日期", "镇街", "技能", "队伍", "监护人", "监护人同意"]


def xlsx(rows: list[list[Any]], header: list[str] = HEADER) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["温岭市社会治理志愿者联盟 志愿者名册"])  # a title row above the header, as real sheets have
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def upload(http: httpx.AsyncClient, token: str, org_id: Any, filename: str, content: bytes
                 ) -> httpx.Response:
    return await http.post("/imports/volunteers", content=content,
                           params={"organizationId": encode_id("Organization", org_id), "filename": filename},
                           headers={"Authorization": f"Bearer {token}"})


async def count(db: Any, model: Any) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_an_import_creates_volunteers_and_memberships_reports_bad_rows_and_is_idempotent(
    http: httpx.AsyncClient, gql: GraphQL, db: Any, clean: None
) -> None:
    # given an org admin with a team, and a volunteer who already registered
    org = await factories.organization(db)
    admin, token = await factories.admin(db)
    async with db.unit_of_work() as session:
        await management.create_team(session, admin, CreateTeam(organization_id=org.id, name="河小二一队"))
    registered, _ = await factories.volunteer(db)
    async with db.read() as session:
        known = await session.get(Volunteer, registered.volunteer_id)
    assert known is not None
    teen_birth = date(date.today().year - 15, 3, 1)
    new_phone, teen_phone = factories.next_phone(), factories.next_phone()
    rows = [
        ["林晓", new_phone, date(2001, 5, 4), "石塘镇", "first_aid、swimming", "河小二一队", None, None],
        [known.name, known.phone, "1999-09-09", None, None, "河小二一队", None, None],
        ["小王", teen_phone, teen_birth.isoformat(), "松门镇", None, None, "王父", "是"],
        ["坏号码", "12345", "2000-01-01", None, None, None, None, None],
        ["无此队", factories.next_phone(), "2000-01-01", None, None, "不存在的队", None, None],
        ["未来人", factories.next_phone(), "2999-01-01", "火星", None, None, None, None],
        ["重复", new_phone, "2000-01-01", None, None, None, None, None],
        [None, None, None, None, None, None, None, None],  # blank rows are skipped
    ]
    content = xlsx(rows)

    # when the admin uploads the sheet
    response = await upload(http, token, org.id, "名册.xlsx", content)

    # then the good rows are in, and each bad row is reported with its row number and column
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["rowsTotal"] == 7 and report["rowsImported"] == 3 and report["rowsFailed"] == 4
    assert report["volunteersCreated"] == 2 and report["membershipsAdded"] == 2
    by_row = {(e["row"], e["column"]) for e in report["errors"]}
    assert {(6, "手机号"), (7, "队伍"), (8, "出生日期"), (8, "镇街"), (9, "手机号")} <= by_row
    assert not any(new_phone in e["message"] for e in report["errors"]), "no phone numbers in reports"
    async with db.read() as session:
        created = await session.scalar(select(Volunteer).where(Volunteer.phone == new_phone))
        teen = await session.scalar(select(Volunteer).where(Volunteer.phone == teen_phone))
        team = await session.scalar(select(Team).where(Team.name == "河小二一队"))
        assert created is not None and teen is not None and team is not None
        members = set(await session.scalars(select(TeamMember.volunteer_id).where(TeamMember.team_id == team.id)))
    assert created.skills == ["first_aid", "swimming"] and created.birth_date == date(2001, 5, 4)
    assert teen.guardian_consent_at is not None and teen.guardian_name == "王父"
    assert members == {created.id, known.id}
    assert known.name == "志愿者", "an existing profile is the person's own: not overwritten"

    # and the error list can be downloaded again as a spreadsheet-friendly CSV
    csv_response = await http.get(report["errorReport"], headers={"Authorization": f"Bearer {token}"})
    assert csv_response.status_code == 200
    lines = list(csv.reader(io.StringIO(csv_response.content.decode("utf-8-sig"))))
    assert lines[0][0].startswith("行号") and len(lines) == 1 + len(report["errors"])

    # when the same file is imported again, then nothing changes
    volunteers_before = await count(db, Volunteer)
    again = (await upload(http, token, org.id, "名册.xlsx", content)).json()
    assert again["rowsImported"] == 0 and again["rowsDuplicate"] == 3 and again["volunteersCreated"] == 0
    assert await count(db, Volunteer) == volunteers_before

    # and an imported volunteer claims their profile by registering with the same phone
    claimed = await gql("RegisterVolunteer", {"input": {"name": "林晓", "phone": new_phone,
                                                        "password": factories.PASSWORD, "birthDate": "2001-05-04"}})
    body = claimed["data"]["registerVolunteer"]
    assert body["errors"] == [] and body["volunteer"]["id"] == encode_id("Volunteer", created.id)
    assert set(body["volunteer"]["skills"]) == {"first_aid", "swimming"}


async def test_a_csv_in_gb18030_imports_too(http: httpx.AsyncClient, db: Any, clean: None) -> None:
    org = await factories.organization(db)
    _, token = await factories.admin(db)
    phone = factories.next_phone()
    text = "姓名,手机号,出生日期\n陈浩," + phone + ",2000/1/2\n"
    response = await upload(http, token, org.id, "名册.csv", text.encode("gb18030"))
    assert response.status_code == 200 and response.json()["volunteersCreated"] == 1


async def test_a_file_that_is_not_a_spreadsheet_imports_nothing(http: httpx.AsyncClient, db: Any,
                                                                clean: None) -> None:
    org = await factories.organization(db)
    _, token = await factories.admin(db)
    for name, content, code in [
        ("照片.xlsx", b"PK\x03\x04 not really a workbook", "UNREADABLE_FILE"),
        ("photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "UNSUPPORTED_FILE"),
        ("名册.csv", b"\x00\x01\x02binary", "UNREADABLE_FILE"),
        ("名册.csv", "手机,备注\n13800000000,x\n".encode(), "MISSING_COLUMNS"),
        ("名册.csv", b"", "EMPTY_FILE"),
    ]:
        response = await upload(http, token, org.id, name, content)
        assert response.status_code == 422, (name, response.text)
        assert response.json()["code"] == code
    assert await count(db, VolunteerImport) == 0
    assert await count(db, Volunteer) == 0


async def test_only_admins_of_the_organization_may_import(http: httpx.AsyncClient, db: Any, clean: None) -> None:
    org = await factories.organization(db)
    _, other_admin = await factories.admin(db, org_name="温岭市医疗青年联合会")
    _, volunteer_token = await factories.volunteer(db)
    content = xlsx([["林晓", factories.next_phone(), "2001-05-04", None, None, None, None, None]])
    assert (await upload(http, other_admin, org.id, "a.xlsx", content)).status_code == 403
    assert (await upload(http, volunteer_token, org.id, "a.xlsx", content)).status_code == 403
    anonymous = await http.post("/imports/volunteers", content=content,
                                params={"organizationId": encode_id("Organization", org.id), "filename": "a.xlsx"})
    assert anonymous.status_code == 401
    assert await count(db, VolunteerImport) == 0
