"""Bulk import of volunteers and team memberships from the city's existing spreadsheets (XLSX or CSV).

Columns (Chinese or English headers, any order): 姓名 name, 手机号 phone, 出生日期 birth date, and optionally
镇街 town, 技能 skills (separated by 、 , ; or spaces), 队伍 team (a team of the importing organization or
below it), 身份证号 ID card, 监护人 guardian and 监护人同意 guardian consent (是/否).

The phone is the key: a phone already on the platform keeps its profile (it is the person's own) and only
gains the listed membership; importing the same file again changes nothing. Every row is checked on its
own and reported (row, column, message — phones masked); a file that is not a spreadsheet imports nothing.
Imported volunteers have no login yet: they claim their profile by registering with the same phone.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.db.models import Team, TeamMember, Town, Volunteer, VolunteerImport
from youthlink.db.models.enums import TeamRole
from youthlink.domain import audit, organizations, personal_data, policies
from youthlink.domain.accounts import MIN_AGE, age_on
from youthlink.domain.actor import Actor
from youthlink.domain.inputs import PHONE_RE, SKILL_RE
from youthlink.domain.spreadsheets import Columns, RowError, data_rows, parse_date, read_table, text
from youthlink.errors import DomainError

COLUMNS = Columns(
    names={
        "name": ("姓名", "名字", "name"),
        "phone": ("手机号", "手机", "联系电话", "phone", "mobile"),
        "birth_date": ("出生日期", "生日", "birth date", "birthdate", "date of birth"),
        "town": ("镇街", "所属镇街", "镇（街道）", "town"),
        "skills": ("技能", "特长", "skills"),
        "team": ("队伍", "所属队伍", "志愿服务队", "team"),
        "id_card": ("身份证号", "身份证", "id card", "id_card"),
        "guardian": ("监护人", "guardian"),
        "guardian_consent": ("监护人同意", "guardian consent"),
    },
    required=("name", "phone", "birth_date"),
    labels={"name": "姓名", "phone": "手机号", "birth_date": "出生日期", "town": "镇街", "skills": "技能",
            "team": "队伍", "id_card": "身份证号", "guardian": "监护人", "guardian_consent": "监护人同意"},
)
SKILL_SEPARATORS = re.compile(r"[、,，;；\s]+")
YES = {"是", "同意", "y", "yes", "true", "1"}


@dataclass
class VolunteerImportReport:
    batch: VolunteerImport
    created: int = 0
    memberships_added: int = 0
    errors: list[RowError] = field(default_factory=list)


@dataclass
class _Row:
    number: int
    name: str
    phone: str
    birth_date: date
    town_id: uuid.UUID | None
    skills: list[str]
    team_id: uuid.UUID | None
    id_card: str | None
    guardian: str | None
    consent: bool


def _parse(number: int, raw: dict[str, Any], towns: dict[str, uuid.UUID], teams: dict[str, uuid.UUID],
           today: date) -> tuple[_Row | None, list[RowError]]:
    errors: list[RowError] = []

    def fail(key: str, message: str) -> None:
        errors.append(RowError(number, COLUMNS.labels[key], message))

    name = text(raw.get("name"))
    if not 1 <= len(name) <= 64:
        fail("name", "姓名不能为空，最多 64 字")
    phone = text(raw.get("phone")).replace("-", "").replace(" ", "")
    if not PHONE_RE.match(phone):
        fail("phone", "手机号格式不正确")
    birth: date | None = None
    try:
        birth = parse_date(raw.get("birth_date"))
        if birth >= today or age_on(birth, today) > 120:
            fail("birth_date", "出生日期不正确")
        elif age_on(birth, today) < MIN_AGE:
            fail("birth_date", f"志愿者须年满 {MIN_AGE} 周岁")
    except (ValueError, TypeError):
        fail("birth_date", "日期格式应为 YYYY-MM-DD")
    town_id = None
    if town_name := text(raw.get("town")):
        town_id = towns.get(town_name)
        if town_id is None:
            fail("town", f"未知镇街：{town_name}")
    skills = sorted({s.lower() for s in SKILL_SEPARATORS.split(text(raw.get("skills"))) if s})
    bad = [s for s in skills if not SKILL_RE.match(s)]
    if bad or len(skills) > 20:
        fail("skills", "技能标识须为小写字母、数字或下划线，最多 20 项")
    team_id = None
    if team_name := text(raw.get("team")):
        team_id = teams.get(team_name)
        if team_id is None:
            fail("team", f"本组织下没有名为“{team_name}”的队伍，请先创建")
    id_card = None
    if raw_id := text(raw.get("id_card")):
        try:
            id_card = personal_data.normalize_id_card(raw_id)
        except DomainError as exc:
            fail("id_card", exc.message)
    guardian = text(raw.get("guardian")) or None
    consent = text(raw.get("guardian_consent")).lower() in YES
    if consent and not guardian:
        fail("guardian", "记录监护人同意时须写明监护人")
    if errors or birth is None:
        return None, errors
    return _Row(number, name, phone, birth, town_id, skills, team_id, id_card, guardian, consent), []


async def import_volunteers(session: AsyncSession, actor: Actor, organization_id: uuid.UUID, filename: str,
                            content: bytes) -> VolunteerImportReport:
    lineage = await organizations.lineage(session, organization_id)
    policies.require_manages_organization(actor, lineage)
    table = read_table(filename, content)
    subtree = await organizations.subtree(session, [organization_id])
    towns = {t.name: t.id for t in (await session.scalars(select(Town))).all()}
    teams = {t.name: t.id for t in (await session.scalars(select(Team).where(Team.organization_id.in_(subtree))))}
    today = datetime.now(UTC).date()

    parsed: list[_Row] = []
    errors: list[RowError] = []
    total = 0
    seen_phones: dict[str, int] = {}
    for number, raw in data_rows(table, COLUMNS):
        total += 1
        row, row_errors = _parse(number, raw, towns, teams, today)
        if row is not None and row.phone in seen_phones and seen_phones[row.phone] != number:
            row_errors = [RowError(number, "手机号", f"与第 {seen_phones[row.phone]} 行重复")]
            row = None
        if row is not None:
            seen_phones[row.phone] = number
            parsed.append(row)
        errors.extend(row_errors)

    assert actor.account_id is not None
    batch = VolunteerImport(organization_id=organization_id, filename=filename[:256], uploaded_by=actor.account_id,
                            rows_total=total, rows_imported=0, rows_duplicate=0, rows_failed=0, errors=[])
    session.add(batch)
    await session.flush()
    report = VolunteerImportReport(batch=batch)

    phones = [r.phone for r in parsed]
    existing = {v.phone: v for v in (await session.scalars(
        select(Volunteer).where(Volunteer.phone.in_(phones)).with_for_update()))} if phones else {}
    for row in parsed:
        volunteer = existing.get(row.phone)
        changed = False
        if volunteer is None:
            if row.id_card and await session.scalar(select(Volunteer.id).where(
                    Volunteer.id_card_hash == personal_data.keyed_hash(row.id_card, "id-card"))):
                errors.append(RowError(row.number, "身份证号", "该身份证号已登记"))
                continue
            minor = age_on(row.birth_date, today) < 18
            volunteer = Volunteer(
                name=row.name, phone=row.phone, birth_date=row.birth_date, town_id=row.town_id, skills=row.skills,
                guardian_name=row.guardian if minor else None,
                guardian_consent_at=datetime.now(UTC) if minor and row.consent else None,
                id_card_cipher=personal_data.encrypt_id_card(row.id_card) if row.id_card else None,
                id_card_hash=personal_data.keyed_hash(row.id_card, "id-card") if row.id_card else None,
            )
            session.add(volunteer)
            await session.flush()
            existing[row.phone] = volunteer
            report.created += 1
            changed = True
            audit.record(session, actor.account_id, "volunteer.import", "volunteer", volunteer.id, batch_id=batch.id,
                         row=row.number)
        if row.team_id is not None:
            added = await session.scalar(
                insert(TeamMember).values(team_id=row.team_id, volunteer_id=volunteer.id, role=TeamRole.MEMBER)
                .on_conflict_do_nothing().returning(TeamMember.team_id)
            )
            if added is not None:
                report.memberships_added += 1
                changed = True
                audit.record(session, actor.account_id, "team.add_member", "team", row.team_id,
                             volunteer_id=volunteer.id, batch_id=batch.id)
        if changed:
            batch.rows_imported += 1
        else:
            batch.rows_duplicate += 1
    errors.sort(key=lambda e: (e.row, e.column or ""))
    report.errors = errors
    batch.rows_failed = len({e.row for e in errors})
    batch.errors = [e.as_json() for e in errors]
    await session.flush()
    audit.record(session, actor.account_id, "volunteer.import_batch", "organization", organization_id,
                 batch_id=batch.id, created=report.created, memberships=report.memberships_added,
                 failed=batch.rows_failed)
    return report
