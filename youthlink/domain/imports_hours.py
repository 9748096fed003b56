"""Offline records: an organization imports historical hours from an XLSX or CSV file.

Columns (Chinese or English headers, any order): 活动名称 activity, 服务日期 date, 服务地点 place,
志愿者手机号 phone, 服务时长 hours, 负责人 person in charge, and optionally 服务内容 content. Each row is
validated on its own and reported (row number, column, message; phones masked); valid rows become PENDING
records for the organization to approve. A row's natural key is a hash of (organization, volunteer, date,
activity, place): importing the same file again adds nothing (ON CONFLICT DO NOTHING on that key).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.config import get_settings
from youthlink.db.models import HoursImport, ServiceRecord, Volunteer
from youthlink.db.models.enums import RecordSource, RecordStatus
from youthlink.db.models.people import PHONE_PATTERN
from youthlink.domain import audit, organizations, policies
from youthlink.domain.actor import Actor
from youthlink.domain.hours import deadlines
from youthlink.domain.hours.ledger import round_hours
from youthlink.domain.hours.records import find_clash, lock_volunteers
from youthlink.domain.personal_data import mask_phone
from youthlink.domain.spreadsheets import Columns, RowError, data_rows, parse_date, read_table, text
from youthlink.errors import NotFound

HEADERS: dict[str, tuple[str, ...]] = {
    "activity": ("活动名称", "活动", "项目名称", "activity", "activity name"),
    "date": ("服务日期", "日期", "date", "service date"),
    "place": ("服务地点", "地点", "place", "location"),
    "phone": ("志愿者手机号", "手机号", "手机", "phone", "volunteer phone", "mobile"),
    "hours": ("服务时长", "服务时长（小时）", "服务时长(小时)", "时长", "hours", "service hours"),
    "person": ("负责人", "活动负责人", "person in charge", "person_in_charge"),
    "content": ("服务内容", "内容", "content"),
}
REQUIRED = ("activity", "date", "place", "phone", "hours", "person")
LABELS = {"activity": "活动名称", "date": "服务日期", "place": "服务地点", "phone": "志愿者手机号",
          "hours": "服务时长", "person": "负责人", "content": "服务内容"}
LIMITS = {"activity": 128, "place": 256, "person": 64, "content": 2000}
MAX_HISTORY_YEARS = 10
COLUMNS = Columns(HEADERS, REQUIRED, LABELS)


@dataclass
class ParsedRow:
    row: int
    values: dict[str, Any]


@dataclass
class ImportReport:
    batch: HoursImport
    errors: list[RowError] = field(default_factory=list)


def _hours(value: Any) -> Decimal:
    try:
        return Decimal(text(value))
    except InvalidOperation:
        raise ValueError from None


def parse_rows(table: list[list[Any]], today: date) -> tuple[list[ParsedRow], list[RowError], int]:
    """Validate each row on its own; returns the good rows, the errors, and how many data rows there were."""
    phone_re = re.compile(PHONE_PATTERN)
    good: list[ParsedRow] = []
    errors: list[RowError] = []
    total = 0
    for offset, raw in data_rows(table, COLUMNS):
        total += 1
        row_errors: list[RowError] = []
        values: dict[str, Any] = {}
        for key in REQUIRED:
            if text(raw.get(key)) == "":
                row_errors.append(RowError(offset, LABELS[key], "不能为空"))
        for key, limit in LIMITS.items():
            value = text(raw.get(key))
            if len(value) > limit:
                row_errors.append(RowError(offset, LABELS[key], f"最多 {limit} 字"))
            values[key] = value
        phone = text(raw.get("phone"))
        if phone and not phone_re.match(phone):
            row_errors.append(RowError(offset, LABELS["phone"], "手机号格式不正确"))
        values["phone"] = phone
        if text(raw.get("date")):
            try:
                day = parse_date(raw["date"])
                if day > today:
                    row_errors.append(RowError(offset, LABELS["date"], "不能是未来的日期"))
                elif day < today.replace(year=today.year - MAX_HISTORY_YEARS):
                    row_errors.append(RowError(offset, LABELS["date"], f"只能导入 {MAX_HISTORY_YEARS} 年内的记录"))
                values["date"] = day
            except (ValueError, TypeError):
                row_errors.append(RowError(offset, LABELS["date"], "日期格式应为 YYYY-MM-DD"))
        if text(raw.get("hours")):
            try:
                exact = _hours(raw["hours"])
                hours = round_hours(exact)
                if not (Decimal(0) < hours <= Decimal(24)):
                    raise ValueError
                values["hours"] = hours
            except (ValueError, TypeError):
                row_errors.append(RowError(offset, LABELS["hours"], "服务时长须为大于 0、不超过 24 的小时数"))
        if row_errors:
            errors.extend(row_errors)
        else:
            good.append(ParsedRow(offset, values))
    return good, errors, total


def import_key(organization_id: uuid.UUID, volunteer_id: uuid.UUID, values: dict[str, Any]) -> str:
    """The row's natural key; a hash, so it holds no personal data."""
    raw = "|".join([str(organization_id), str(volunteer_id), values["date"].isoformat(), values["activity"],
                    values["place"]])
    return hashlib.sha256(raw.encode()).hexdigest()


async def import_hours(session: AsyncSession, actor: Actor, organization_id: uuid.UUID, filename: str,
                       content: bytes) -> ImportReport:
    """Import a file of offline hours as PENDING records of the organization; returns the report."""
    settings = get_settings()
    lineage = await organizations.lineage(session, organization_id)
    if not lineage:
        raise NotFound("ORGANIZATION_NOT_FOUND", "组织不存在", "organizationId")
    policies.require_manages_organization(actor, lineage)
    today = deadlines.today()
    rows, errors, total = parse_rows(read_table(filename, content), today)

    phones = sorted({r.values["phone"] for r in rows})
    volunteers = dict((await session.execute(
        select(Volunteer.phone, Volunteer.id).where(Volunteer.phone.in_(phones))
    )).all()) if phones else {}
    await lock_volunteers(session, volunteers.values())
    assert actor.account_id is not None
    batch = HoursImport(organization_id=organization_id, filename=filename[:256], uploaded_by=actor.account_id,
                        rows_total=total, rows_imported=0, rows_duplicate=0, rows_failed=0, errors=[])
    session.add(batch)
    await session.flush()
    zone = ZoneInfo(settings.city_timezone)
    imported = duplicates = 0
    for row in rows:
        values = row.values
        volunteer_id = volunteers.get(values["phone"])
        if volunteer_id is None:
            errors.append(RowError(row.row, LABELS["phone"], f"未找到注册志愿者 {mask_phone(values['phone'])}"))
            continue
        key = import_key(organization_id, volunteer_id, values)
        exists = await session.scalar(select(ServiceRecord.id).where(ServiceRecord.import_key == key))
        if exists is not None:
            duplicates += 1
            continue
        clash = await find_clash(session, volunteer_id, values["date"], values["hours"], None)
        if clash is not None:
            errors.append(RowError(row.row, LABELS["hours"],
                                   f"该志愿者当日服务时长合计将超过 24 小时（已有记录：{clash.organization}）"))
            continue
        started = datetime.combine(values["date"], time(), zone)
        due = deadlines.due_on(values["date"])
        record_id = await session.scalar(
            insert(ServiceRecord).values(
                id=uuid.uuid4(), volunteer_id=volunteer_id, organization_id=organization_id, task_id=None,
                signup_id=None, import_key=key, import_batch_id=batch.id, activity_name=values["activity"],
                service_date=values["date"], place=values["place"], content=values["content"],
                person_in_charge=values["person"], started_at=started,
                ended_at=started + timedelta(hours=float(values["hours"])), times_recorded=False,
                hours=values["hours"], status=RecordStatus.PENDING, source=RecordSource.IMPORT,
                note=f"导入：{filename[:200]} 第 {row.row} 行", due_on=due, late=today > due,
                recorded_by=actor.account_id,
            ).on_conflict_do_nothing(index_elements=[ServiceRecord.import_key]).returning(ServiceRecord.id)
        )
        if record_id is None:
            duplicates += 1
            continue
        imported += 1
        audit.record(session, actor.account_id, "hours.import", "service_record", record_id, hours=str(values["hours"]),
                     batch_id=batch.id, row=row.row)
    errors.sort(key=lambda e: e.row)  # stable: within a row, in the order found
    batch.rows_imported, batch.rows_duplicate = imported, duplicates
    batch.rows_failed = len({e.row for e in errors})
    batch.errors = [e.as_json() for e in errors]
    await session.flush()
    audit.record(session, actor.account_id, "hours.import_batch", "organization", organization_id,
                 batch_id=batch.id, imported=imported, duplicates=duplicates, failed=batch.rows_failed)
    return ImportReport(batch=batch, errors=errors)
