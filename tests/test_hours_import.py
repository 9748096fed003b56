"""Offline records: XLSX and CSV imports through the REST route, validated row by row, idempotent, PENDING."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
from openpyxl import Workbook
from sqlalchemy import select

from tests import factories
from youthlink.db.models import ServiceRecord
from youthlink.db.models.enums import RecordSource, RecordStatus
from youthlink.domain.hours import deadlines
from youthlink.graphql.ids import encode_id

HEADER = ["活动名称", "服务日期", "服务地点", "志愿者手机号", "服务时长", "负责人", "服务内容"]


async def phone_of(db: Any, volunteer_id: Any) -> str:
    from youthlink.db.models import Volunteer

    async with db.read() as session:
        row = await session.get(Volunteer, volunteer_id)
    assert row is not None
    return row.phone


def xlsx(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def upload(http: httpx.AsyncClient, token: str, org_id: Any, filename: str, content: bytes) -> httpx.Response:
    return await http.post("/imports/service-hours", content=content,
                           params={"organizationId": encode_id("Organization", org_id), "filename": filename},
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"})


async def records(db: Any, org_id: Any) -> list[ServiceRecord]:
    async with db.read() as session:
        return list((await session.scalars(select(ServiceRecord).where(ServiceRecord.organization_id == org_id)
                                           .order_by(ServiceRecord.service_date))).all())


async def test_an_xlsx_import_validates_rows_and_is_idempotent(http: httpx.AsyncClient, db: Any, clean: None) -> None:
    # given an organization admin and two registered volunteers, and a spreadsheet of last year's paper records
    _, token = await factories.admin(db)
    org = await factories.organization(db)
    one, two = [await factories.volunteer(db) for _ in range(2)]
    phone_one, phone_two = [await phone_of(db, v.volunteer_id) for v, _ in (one, two)]
    today = deadlines.today()
    day = today - timedelta(days=200)
    sheet = xlsx([
        ["温岭市社会治理志愿者联盟 线下服务记录"],  # a title row above the header is fine
        HEADER,
        ["河小二 · 九龙湖巡河", day, "九龙湖", phone_one, 3, "王队长", "河道巡查、垃圾清理"],
        ["河小二 · 九龙湖巡河", day.isoformat(), "九龙湖", int(phone_two), "2.45", "王队长", ""],
        ["爱暴走", "2024/13/01", "东辉公园", phone_one, 2, "李老师", ""],      # a bad date
        ["爱暴走", day, "东辉公园", "13800000000", 2, "李老师", ""],          # not a registered volunteer
        ["", day, "东辉公园", phone_two, 30, "", ""],                        # three problems
        ["海洋净滩", today + timedelta(days=3), "金沙滩", phone_two, 2, "陈", ""],  # in the future
        [None, None, None, None, None, None, None],                          # blank: skipped
    ])

    # when it is uploaded
    response = await upload(http, token, org.id, "2025线下记录.xlsx", sheet)

    # then the good rows are imported as PENDING records for approval, and each bad row is reported
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["rowsTotal"], report["rowsImported"], report["rowsDuplicate"], report["rowsFailed"]) == (6, 2, 0, 4)
    assert [(e["row"], e["column"]) for e in report["errors"]] == [
        (5, "服务日期"), (6, "志愿者手机号"), (7, "活动名称"), (7, "负责人"), (7, "服务时长"), (8, "服务日期"),
    ]
    assert "138****0000" in report["errors"][1]["message"] and "13800000000" not in response.text
    imported = await records(db, org.id)
    assert sorted(r.hours for r in imported) == [Decimal("2.4"), Decimal("3.0")]  # 2.45 h rounds down to 2.4
    first = next(r for r in imported if r.hours == Decimal("3.0"))
    assert first.status is RecordStatus.PENDING and first.source is RecordSource.IMPORT
    assert (first.activity_name, first.place, first.person_in_charge, first.content) == (
        "河小二 · 九龙湖巡河", "九龙湖", "王队长", "河道巡查、垃圾清理")
    assert first.service_date == day and first.task_id is None and first.signup_id is None
    assert first.late and first.due_on == deadlines.due_on(day)  # recorded long after the 10 working days
    assert not first.times_recorded

    # when the same file is uploaded again
    again = (await upload(http, token, org.id, "2025线下记录.xlsx", sheet)).json()

    # then nothing new is imported: the rows are recognized as already there
    assert (again["rowsImported"], again["rowsDuplicate"], again["rowsFailed"]) == (0, 2, 4)
    assert len(await records(db, org.id)) == 2


async def test_a_csv_import_with_english_headers_and_the_daily_limit(http: httpx.AsyncClient, db: Any,
                                                                     clean: None) -> None:
    # given a volunteer with 20 hours already recorded on a day
    _, token = await factories.admin(db)
    org = await factories.organization(db)
    volunteer, _ = await factories.volunteer(db)
    phone = await phone_of(db, volunteer.volunteer_id)
    day = deadlines.today() - timedelta(days=30)
    csv = ("activity,date,place,phone,hours,person in charge\n"
           f"义诊服务,{day},城东社区,{phone},20,张医生\n"
           f"义诊服务（下午）,{day},城西社区,{phone},5,张医生\n").encode("gb18030")

    # when a CSV (in GB18030, as Excel saves it) adds 5 more hours that day
    report = (await upload(http, token, org.id, "records.csv", csv)).json()

    # then the second row is refused: one person's day cannot hold more than 24 hours
    assert (report["rowsImported"], report["rowsFailed"]) == (1, 1)
    assert report["errors"][0]["row"] == 3 and "24" in report["errors"][0]["message"]


async def test_only_the_organizations_admins_may_import(http: httpx.AsyncClient, db: Any, clean: None) -> None:
    _, outsider = await factories.admin(db, org_name="温岭市医疗青年联合会")
    _, volunteer_token = await factories.volunteer(db)
    org = await factories.organization(db)
    sheet = xlsx([HEADER])
    assert (await upload(http, outsider, org.id, "x.xlsx", sheet)).status_code == 403
    assert (await upload(http, volunteer_token, org.id, "x.xlsx", sheet)).status_code == 403
    missing = await upload(http, outsider, org.id, "x.csv", "活动名称,日期\n".encode())
    assert missing.status_code in (403, 422)
