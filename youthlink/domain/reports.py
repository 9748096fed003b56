"""Monthly and quarterly reports: the CityOverview figures as an XLSX workbook (one sheet per breakdown, and
one for the service outcomes; Chinese headers, numbers as numbers) or one CSV, for the city (city admins) or an
organization with its children (its admins). The 1st of each month, the `stats.monthly_report` job tells the
city admins that last month's report is ready (once per month and admin)."""

from __future__ import annotations

import csv
import io
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.config import get_settings
from youthlink.db.models import Organization, Project, RoleGrant, Team, Town
from youthlink.db.models.enums import LitterCategory, OutcomeKind, ProblemCategory, Role
from youthlink.domain import notifications, outcomes, policies, rollups, stats
from youthlink.domain.actor import Actor
from youthlink.domain.inputs import StatsPeriod
from youthlink.errors import Forbidden, Invalid

PERIOD = re.compile(r"^(\d{4})-(?:(0[1-9]|1[0-2])|Q([1-4]))$")


@dataclass
class Sheet:
    title: str
    headers: list[str]
    rows: list[list[Any]]


@dataclass
class Report:
    period: str  # 2026-10 or 2026-Q3
    scope_name: str
    sheets: list[Sheet]

    @property
    def filename_stem(self) -> str:
        return f"youthlink-report-{self.period}"


def parse_period(text: str) -> StatsPeriod:
    """`2026-10` (a month) or `2026-Q3` (a quarter)."""
    found = PERIOD.match(text)
    if found is None:
        raise Invalid("INVALID_PERIOD", "报表期间须为 YYYY-MM（月报）或 YYYY-Qn（季报）", "period")
    year = int(found.group(1))
    if found.group(2):
        first, kind = date(year, int(found.group(2)), 1), "month"
    else:
        first, kind = date(year, (int(found.group(3)) - 1) * 3 + 1, 1), "quarter"
    return StatsPeriod.model_validate({"from": first, "to": rollups.period_end(first, kind) - timedelta(days=1)})


async def _names(session: AsyncSession, model: Any, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    return dict((await session.execute(select(model.id, model.name).where(model.id.in_(ids)))).all())


async def build(session: AsyncSession, actor: Actor, period_text: str) -> Report:
    """The report for a period: city admins get the city's, organization admins their organizations'."""
    if policies.stats_audience(actor) == "volunteer":
        raise Forbidden("FORBIDDEN", "仅市级或组织管理员可下载报表")
    period = parse_period(period_text)
    figures = await stats.city_stats(session, actor, period)
    orgs = await _names(session, Organization, [b.key for b in figures.by_organization])
    towns = await _names(session, Town, [b.key for b in figures.by_town])
    projects = await _names(session, Project, [b.key for b in figures.by_project])
    teams = await _names(session, Team, [b.key for b in figures.by_team])
    scope = "全市" if actor.is_city_admin else "、".join(sorted(
        (await _names(session, Organization, sorted(actor.admin_organization_ids))).values()))
    hours = float
    overview = Sheet("概览", ["指标", "数值"], [
        ["统计期间", f"{period.from_.isoformat()} 至 {period.to.isoformat()}"],
        ["统计范围", scope],
        ["注册志愿者", figures.registered_volunteers],
        ["活跃志愿者", figures.active_volunteers],
        ["服务时长（小时）", hours(figures.total_hours)],
        ["人均时长（小时）", figures.hours_per_volunteer],
        ["发布任务", figures.tasks_published],
        ["提供岗位", figures.slots_offered],
        ["已招募岗位", figures.slots_filled],
        ["招募率", figures.fill_rate],
        ["爽约次数", figures.no_shows],
        ["爽约率", figures.no_show_rate],
    ])
    sheets = [
        overview,
        Sheet("按组织", ["组织（含下级）", "服务时长（小时）", "志愿者人数", "任务数"],
              [[orgs.get(b.key, str(b.key)), hours(b.hours), b.volunteers, b.tasks] for b in figures.by_organization]),
        Sheet("按镇街", ["镇街", "服务时长（小时）", "志愿者人数"],
              [[towns.get(b.key, str(b.key)), hours(b.hours), b.volunteers] for b in figures.by_town]),
        Sheet("按项目", ["项目", "服务时长（小时）", "志愿者人数"],
              [[projects.get(b.key, str(b.key)), hours(b.hours), b.volunteers] for b in figures.by_project]),
        Sheet("按队伍", ["队伍", "服务时长（小时）", "志愿者人数"],
              [[teams.get(b.key, str(b.key)), hours(b.hours), b.volunteers] for b in figures.by_team]),
        Sheet("按月", ["月份", "服务时长（小时）", "活跃志愿者", "新注册志愿者"],
              [[m.month, hours(m.hours), m.active_volunteers, m.new_volunteers] for m in figures.monthly]),
        Sheet("星级", ["星级", "志愿者人数"], [[level, n] for level, n in figures.star_levels]),
        await _outcomes_sheet(session, figures),
    ]
    return Report(period=period_text, scope_name=scope, sheets=sheets)


OUTCOME_HEADERS = [
    "项目", "成效类型", "记录任务数", "垃圾合计（千克）",
    *(f"{outcomes.LITTER_LABELS[c.value]}（千克）" for c in LitterCategory), "垃圾件数",
    "巡河里程（公里）", "上报问题数", *(f"{outcomes.PROBLEM_LABELS[c.value]}（个）" for c in ProblemCategory),
]


async def _outcomes_sheet(session: AsyncSession, figures: stats.CityStats) -> Sheet:
    """服务成效: per project, the outcomes of the period's tasks (litter by category, river patrols); a cell of the
    other kind's columns is left empty."""
    assert figures.period is not None
    found = await outcomes.totals(session, figures.scope, figures.period)
    names = await _names(session, Project, [p.project_id for p in found])
    rows: list[list[Any]] = []
    for p in found:
        litter = p.kind is OutcomeKind.LITTER
        kg = {line.category: float(line.kg or 0) for line in p.litter_by_category}
        problems = {line.category: line.count or 0 for line in p.problems_by_category}
        rows.append([
            names.get(p.project_id, str(p.project_id)), "垃圾清理" if litter else "巡河", p.tasks_reported,
            float(p.litter_kg) if litter else None,
            *((kg.get(c.value, 0.0) if litter else None) for c in LitterCategory),
            p.litter_items if litter else None,
            None if litter else float(p.patrol_km), None if litter else p.problems_reported,
            *((None if litter else problems.get(c.value, 0)) for c in ProblemCategory),
        ])
    return Sheet("服务成效", OUTCOME_HEADERS, rows)


def to_xlsx(report: Report) -> bytes:
    workbook = Workbook()
    workbook.remove(workbook.active)  # type: ignore[arg-type]
    for sheet in report.sheets:
        ws = workbook.create_sheet(sheet.title)
        ws.append(sheet.headers)
        for row in sheet.rows:
            ws.append(row)
        for column, header in zip(ws.columns, sheet.headers, strict=False):
            ws.column_dimensions[column[0].column_letter].width = max(12, len(header) * 2 + 2)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def to_csv(report: Report) -> bytes:
    """One CSV: each breakdown under its title, separated by an empty line (UTF-8 with BOM for Excel)."""
    out = io.StringIO()
    writer = csv.writer(out)
    for i, sheet in enumerate(report.sheets):
        if i:
            writer.writerow([])
        writer.writerow([f"# {sheet.title}"])
        writer.writerow(sheet.headers)
        writer.writerows(sheet.rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def last_month(today: date | None = None) -> str:
    today = today or datetime.now(ZoneInfo(get_settings().city_timezone)).date()
    return (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


async def announce_last_month(session: AsyncSession, today: date | None = None) -> int:
    """Tell every city admin that last month's report is ready; once per month and admin (dedupe key), so the
    daily beat does it on the 1st (or the first run after) and never twice."""
    period = last_month(today)
    admins = (await session.scalars(select(RoleGrant.account_id).where(RoleGrant.role == Role.CITY_ADMIN)
                                    .order_by(RoleGrant.account_id))).all()
    sent = 0
    for account_id in admins:
        sent += await notifications.notify(
            session, kind="stats.monthly_report", account_id=account_id,
            payload={"period": period, "xlsx": f"/reports/{period}.xlsx", "csv": f"/reports/{period}.csv"},
            dedupe_key=f"stats.monthly_report:{period}:{account_id}")
    return sent
