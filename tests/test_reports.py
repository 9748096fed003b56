"""Monthly and quarterly reports: XLSX (read back with openpyxl) and CSV from the authenticated REST
endpoints, scoped to the city or the organization; the monthly announcement to the city admins."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import httpx
from openpyxl import load_workbook
from sqlalchemy import select

from tests import factories
from tests.test_stats import a_world, refreshed
from youthlink.db.models import Notification
from youthlink.db.models.enums import Role
from youthlink.domain import reports, rollups, stats


def month_of(w: dict[str, Any]) -> str:
    return max(w["days"]).strftime("%Y-%m")


async def test_the_monthly_report_as_xlsx_and_csv_with_the_right_figures(http: httpx.AsyncClient, db: Any,
                                                                         clean: None) -> None:
    # given approved, adjusted, rejected records and a no-show, refreshed into the rollups
    w = await a_world(db)
    await refreshed(db)
    _, city_token = await factories.admin(db, Role.CITY_ADMIN, None)
    period = month_of(w)
    async with db.read() as session:
        figures = await stats.overview(session, stats.Scope(), reports.parse_period(period),
                                     from_ledger=True)

    # when the city admin downloads the month's report as XLSX
    response = await http.get(f"/reports/{period}.xlsx", headers={"Authorization": f"Bearer {city_token}"})

    # then it is a workbook named for the period, one sheet per breakdown, Chinese headers, numbers as numbers
    assert response.status_code == 200, response.text
    assert f'filename="youthlink-report-{period}.xlsx"' in response.headers["content-disposition"]
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["概览", "按组织", "按镇街", "按项目", "按队伍", "按月", "星级", "服务成效"]
    overview = {row[0]: row[1] for row in book["概览"].iter_rows(min_row=2, values_only=True)}
    assert overview["统计范围"] == "全市"
    assert overview["服务时长（小时）"] == float(figures.total_hours)
    assert isinstance(overview["服务时长（小时）"], float) and isinstance(overview["活跃志愿者"], int)
    assert overview["活跃志愿者"] == figures.active_volunteers and overview["爽约次数"] == figures.no_shows
    orgs = list(book["按组织"].iter_rows(values_only=True))
    assert orgs[0] == ("组织（含下级）", "服务时长（小时）", "志愿者人数", "任务数")
    assert w["org"].name in {row[0] for row in orgs[1:]}
    teams = {row[0]: row[1] for row in book["按队伍"].iter_rows(min_row=2, values_only=True)}
    assert teams == {w["team"].name: float(next(b.hours for b in figures.by_team))}

    # and as CSV, the same figures under each sheet's title
    response = await http.get(f"/reports/{period}.csv", headers={"Authorization": f"Bearer {city_token}"})
    assert response.status_code == 200 and "text/csv" in response.headers["content-type"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["# 概览"] and ["服务时长（小时）", str(float(figures.total_hours))] in rows


async def test_org_admins_get_their_organization_volunteers_and_strangers_none(http: httpx.AsyncClient, db: Any,
                                                                               clean: None) -> None:
    # given the world; an admin of the organization, one of another, a volunteer
    w = await a_world(db)
    await refreshed(db)
    _, org_token = await factories.admin(db, Role.ORG_ADMIN, w["org"].name)
    _, other_token = await factories.admin(db, Role.ORG_ADMIN, "温岭市医疗青年联合会")
    quarter = rollups.period_start(max(w["days"]), "quarter")
    period = f"{quarter.year}-Q{(quarter.month - 1) // 3 + 1}"

    async def get(token: str | None, name: str = f"{period}.xlsx") -> httpx.Response:
        return await http.get(f"/reports/{name}", headers={"Authorization": f"Bearer {token}"} if token else {})

    # when each downloads the quarter's report
    mine, theirs, volunteer, anonymous = (await get(org_token), await get(other_token), await get(w["v1_token"]),
                                          await get(None))

    # then the org admin's has the organization's hours, the other org's none, the rest are refused
    assert mine.status_code == 200 and theirs.status_code == 200
    assert f'filename="youthlink-report-{period}.xlsx"' in mine.headers["content-disposition"]
    ours = {r[0]: r[1] for r in load_workbook(io.BytesIO(mine.content))["概览"].iter_rows(values_only=True)}
    other = {r[0]: r[1] for r in load_workbook(io.BytesIO(theirs.content))["概览"].iter_rows(values_only=True)}
    assert ours["统计范围"] == w["org"].name and ours["服务时长（小时）"] == 10.5
    assert other["服务时长（小时）"] == 0
    assert volunteer.status_code == 403 and anonymous.status_code == 401
    # and a malformed period or format is refused
    assert (await get(org_token, "2026-13.xlsx")).status_code == 422
    assert (await get(org_token, f"{period}.pdf")).status_code == 404


async def test_last_months_report_is_announced_to_city_admins_once(db: Any, clean: None) -> None:
    # given two city admins
    first, _ = await factories.admin(db, Role.CITY_ADMIN, None)
    second, _ = await factories.admin(db, Role.CITY_ADMIN, None)

    # when the daily job runs on the 1st, and again the next day
    async with db.unit_of_work() as session:
        sent = await reports.announce_last_month(session, date(2026, 11, 1))
    async with db.unit_of_work() as session:
        again = await reports.announce_last_month(session, date(2026, 11, 2))

    # then each city admin was told once that October's report is ready, with its links
    assert (sent, again) == (2, 0)
    async with db.read() as session:
        rows = (await session.scalars(select(Notification).where(Notification.kind == "stats.monthly_report"))).all()
    assert sorted(str(r.recipient_account_id) for r in rows) == sorted([str(first.account_id), str(second.account_id)])
    assert all(r.payload == {"period": "2026-10", "xlsx": "/reports/2026-10.xlsx", "csv": "/reports/2026-10.csv"}
               for r in rows)
