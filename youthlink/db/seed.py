"""Reference data (from youthlink/data/reference.yaml) and synthetic demo data.

Reference data is idempotent: run it on every start. Demo data is loaded once into an empty database;
`city` scale gives the city's real size (66,000 volunteers, 755 teams, 2,000 tasks a month and a year of
service records) for the benchmarks, written with COPY so it takes about a minute, not an hour.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pyotp
import yaml
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.db.models import Organization, Project, ProjectPartner, Town, Volunteer
from youthlink.db.models.enums import OrganizationKind, Role
from youthlink.domain.accounts import hash_password
from youthlink.domain.hours import rebuild_totals

log = logging.getLogger(__name__)
Scale = Literal["small", "city"]
DEMO_PASSWORD = "youthlink-demo"
SKILLS = ["first_aid", "swimming", "driving", "photography", "teaching", "english", "counseling", "lifeguard",
          "cooking", "sign_language", "legal_aid", "medical", "event_staff", "it_support", "boating"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任卢姚"
GIVEN = "晓明华丽强敏静伟芳娜秀英军杰涛斌超磊洋艳勇霞平刚桂兰红梅鑫宇浩轩欣怡佳琪子涵雨彤博文思远一诺"


def reference() -> dict[str, Any]:
    text_ = resources.files("youthlink.data").joinpath("reference.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text_)
    return data


async def _upsert(session: AsyncSession, model: Any, rows: list[dict[str, Any]], key: str) -> None:
    if rows:
        await session.execute(insert(model).values(rows).on_conflict_do_nothing(index_elements=[key]))


async def load_reference(session: AsyncSession) -> None:
    """Towns, the city committee, town committees, affiliated orgs, Youth Homes and brand projects."""
    data = reference()
    await _upsert(session, Town, [
        {"id": uuid.uuid4(), **{k: t[k] for k in ("code", "name", "kind", "lat", "lng")}} for t in data["towns"]
    ], "code")
    towns = {t.code: t for t in (await session.scalars(select(Town))).all()}
    await _upsert(session, Organization, [{
        "id": uuid.uuid4(), "name": data["city_committee"], "kind": OrganizationKind.CITY_COMMITTEE,
        "description": "团市委", "illustrative": False,
    }], "name")
    city = await session.scalar(select(Organization).where(Organization.name == data["city_committee"]))
    assert city is not None
    children: list[dict[str, Any]] = []
    for town in towns.values():
        short = town.name.removesuffix("街道").removesuffix("镇")
        children.append({"id": uuid.uuid4(), "name": f"共青团{town.name}委员会", "kind": OrganizationKind.TOWN_COMMITTEE,
                         "parent_id": city.id, "town_id": town.id, "description": f"{short}团委", "illustrative": False})
    for org in data["affiliated_organizations"]:
        children.append({"id": uuid.uuid4(), "name": org["name"], "kind": OrganizationKind.AFFILIATED_ORG,
                         "parent_id": city.id, "town_id": None, "description": org.get("description", ""),
                         "illustrative": bool(org.get("illustrative", False))})
    hq = data["youth_homes"]["headquarters"]
    children.append({"id": uuid.uuid4(), "name": hq["name"], "kind": OrganizationKind.YOUTH_HOME,
                     "parent_id": city.id, "town_id": towns[hq["town"]].id, "description": "青年之家总部",
                     "illustrative": False})
    await _upsert(session, Organization, children, "name")
    orgs = {o.name: o for o in (await session.scalars(select(Organization))).all()}
    hq_org = orgs[hq["name"]]
    branches = []
    for town in towns.values():
        committee = orgs[f"共青团{town.name}委员会"]
        branches.append({"id": uuid.uuid4(), "name": f"{town.name}青年之家", "kind": OrganizationKind.YOUTH_HOME,
                         "parent_id": committee.id, "town_id": town.id, "description": f"青年之家分部（{hq_org.name}指导）",
                         "illustrative": False})
    await _upsert(session, Organization, branches, "name")
    orgs = {o.name: o for o in (await session.scalars(select(Organization))).all()}
    await _upsert(session, Project, [
        {"id": uuid.uuid4(), "name": p["name"], "owner_organization_id": orgs[p["owner"]].id,
         "description": p.get("description", "")} for p in data["projects"]
    ], "name")
    projects = {p.name: p for p in (await session.scalars(select(Project))).all()}
    partners = [{"project_id": projects[p["name"]].id, "organization_id": orgs[name].id}
                for p in data["projects"] for name in p.get("partners", [])]
    if partners:
        await session.execute(insert(ProjectPartner).values(partners).on_conflict_do_nothing())


@dataclass(frozen=True)
class DemoSize:
    volunteers: int
    teams_per_org: int
    past_tasks: int
    upcoming_tasks: int
    participants: tuple[int, int]
    history_days: int


SIZES: dict[str, DemoSize] = {
    "small": DemoSize(volunteers=300, teams_per_org=2, past_tasks=60, upcoming_tasks=40, participants=(4, 12),
                      history_days=300),
    # 755 teams over the 41 organizations, 2,000 tasks a month for a year, about 1M service records.
    "city": DemoSize(volunteers=66_000, teams_per_org=19, past_tasks=24_000, upcoming_tasks=2_000,
                     participants=(30, 54), history_days=365),
}

DEMO_ACCOUNTS = [
    # phone, name, role, organization name (None: city-wide)
    ("13900000000", "市团委管理员（演示）", Role.CITY_ADMIN, None),
    ("13900000001", "社会治理联盟管理员（演示）", Role.ORG_ADMIN, "温岭市社会治理志愿者联盟"),
    ("13900000002", "石塘团委管理员（演示）", Role.ORG_ADMIN, "共青团石塘镇委员会"),
]


async def _copy(session: AsyncSession, table: str, columns: list[str], records: list[tuple[Any, ...]]) -> None:
    if not records:
        return
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.copy_records_to_table(table, records=records, columns=columns)


def _phone(i: int) -> str:
    return f"137{i:08d}"


async def load_demo(session: AsyncSession, scale: Scale = "small", seed: int = 2026) -> bool:
    """Synthetic teams, volunteers, tasks and a history of approved hours. False if already loaded."""
    if await session.scalar(select(func.count()).select_from(Volunteer)):
        log.info("demo data: the database already has volunteers; nothing loaded")
        return False
    size = SIZES[scale]
    rng = random.Random(seed)
    tz = ZoneInfo("Asia/Shanghai")
    now = datetime.now(UTC)
    password_hash = hash_password(DEMO_PASSWORD)
    towns = list((await session.scalars(select(Town).order_by(Town.code))).all())
    orgs = list((await session.scalars(select(Organization).order_by(Organization.name))).all())
    projects = list((await session.scalars(select(Project).order_by(Project.name))).all())
    by_name = {o.name: o for o in orgs}

    # Accounts for the demo's admins.
    admin_ids: dict[str, uuid.UUID] = {}
    accounts: list[tuple[Any, ...]] = []
    grants: list[tuple[Any, ...]] = []
    for phone, name, role, org_name in DEMO_ACCOUNTS:
        account_id = uuid.uuid4()
        admin_ids[phone] = account_id
        accounts.append((account_id, phone, name, password_hash, None, 0, now))
        grants.append((uuid.uuid4(), account_id, role.value, by_name[org_name].id if org_name else None, None, None, now))
    approver = admin_ids["13900000000"]

    # Teams: every organization runs a few; the emergency-rescue org also has a commando team.
    teams: list[tuple[Any, ...]] = []
    team_org: list[uuid.UUID] = []
    for org in orgs:
        if org.kind is OrganizationKind.CITY_COMMITTEE:
            continue
        for n in range(size.teams_per_org):
            team_id = uuid.uuid4()
            teams.append((team_id, org.id, f"{org.name.removeprefix('温岭市')}志愿服务{n + 1}队", False, None, None, now))
            team_org.append(org.id)
    rescue = by_name.get("温岭市青年应急救援队")
    if rescue is not None:
        today = now.astimezone(tz).date()
        teams.append((uuid.uuid4(), rescue.id, "青年突击队（防台抗台）", True, today - timedelta(days=3),
                      today + timedelta(days=27), now))
        team_org.append(rescue.id)

    # Volunteers, each with an account, a home near their town and one team.
    volunteers: list[tuple[Any, ...]] = []
    members: list[tuple[Any, ...]] = []
    vol_ids: list[uuid.UUID] = []
    today = now.astimezone(tz).date()
    for i in range(size.volunteers):
        vid = uuid.uuid4()
        vol_ids.append(vid)
        town = towns[i % len(towns)]
        age_days = rng.randint(14 * 365 + 30, 35 * 365)
        birth = today - timedelta(days=age_days)
        minor = age_days < 18 * 365 + 5
        skills = sorted(rng.sample(SKILLS, rng.randint(0, 3)))
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))
        created = now - timedelta(days=rng.randint(0, size.history_days + 400), seconds=rng.randint(0, 86_399))
        volunteers.append((
            vid, name, _phone(i), birth, town.id, skills,
            town.lat + rng.uniform(-0.03, 0.03), town.lng + rng.uniform(-0.03, 0.03),
            "监护人" if minor else None, created if minor else None, Decimal(0), created,
        ))
        account_id = uuid.uuid4()
        accounts.append((account_id, _phone(i), name, password_hash, vid, 0, created))
        grants.append((uuid.uuid4(), account_id, Role.VOLUNTEER.value, None, None, None, created))
        members.append((teams[rng.randrange(len(teams))][0], vid, "LEADER" if i < len(teams) else "MEMBER", created))

    # Tasks: a year of past ones (completed, with approved hours) and the coming month's open ones.
    tasks: list[tuple[Any, ...]] = []
    signups: list[tuple[Any, ...]] = []
    records: list[tuple[Any, ...]] = []
    busy_days: set[tuple[int, date]] = set()
    titles = ["河道巡查", "海洋净滩", "关爱候鸟儿童", "爱暴走公益行", "社区普法", "义诊服务", "文明交通劝导", "敬老助残", "青年之家活动"]

    def task_row(task_id: uuid.UUID, start: datetime, hours: int, slots: int, filled: int, status: str,
                 mode: str) -> tuple[Any, ...]:
        team_idx = rng.randrange(len(teams))
        org_id = team_org[team_idx]
        town = towns[rng.randrange(len(towns))]
        project = projects[rng.randrange(len(projects))] if rng.random() < 0.6 else None
        title = f"{project.name if project else rng.choice(titles)} · {town.name}"
        skills = [rng.choice(SKILLS)] if rng.random() < 0.25 else []
        return (task_id, org_id, project.id if project else None, teams[team_idx][0] if rng.random() < 0.5 else None,
                town.id, title, "", f"{town.name}青年之家", town.lat + rng.uniform(-0.02, 0.02),
                town.lng + rng.uniform(-0.02, 0.02), start, start + timedelta(hours=hours),
                start - timedelta(hours=12), slots, filled, skills, None, mode, 500, pyotp.random_base32(), status,
                None, None, approver, start - timedelta(days=7))

    for _ in range(size.past_tasks):
        day = today - timedelta(days=rng.randint(1, size.history_days))
        start = datetime.combine(day, time(rng.choice([8, 9, 13, 14, 19])), tz).astimezone(UTC)
        hours = rng.choice([2, 3, 3, 4])
        wanted = rng.randint(*size.participants)
        chosen = []
        for v in rng.sample(range(len(vol_ids)), min(len(vol_ids), wanted * 2)):
            if len(chosen) == wanted:
                break
            if (v, day) not in busy_days:
                busy_days.add((v, day))
                chosen.append(v)
        task_id = uuid.uuid4()
        tasks.append(task_row(task_id, start, hours, max(wanted, len(chosen)), len(chosen), "COMPLETED", "FIRST_COME"))
        for v in chosen:
            signup_id = uuid.uuid4()
            checked_in = start - timedelta(minutes=rng.randint(0, 15))
            checked_out = start + timedelta(hours=hours, minutes=rng.randint(0, 20))
            signups.append((signup_id, task_id, vol_ids[v], "COMPLETED", None, None, start - timedelta(days=3),
                            start - timedelta(days=2), checked_in, checked_out, None, None))
            approved_at = start + timedelta(days=rng.randint(1, 5))
            records.append((uuid.uuid4(), vol_ids[v], task_id, signup_id, start, start + timedelta(hours=hours),
                            Decimal(hours), "APPROVED", "CHECK_IN", "", None, approver, approved_at, None, approved_at))

    for _ in range(size.upcoming_tasks):
        day = today + timedelta(days=rng.randint(1, 30))
        start = datetime.combine(day, time(rng.choice([8, 9, 13, 14])), tz).astimezone(UTC)
        slots = rng.randint(*size.participants)
        mode = "MATCHED" if rng.random() < 0.2 else "FIRST_COME"
        wanted = rng.randint(0, slots // 2) if mode == "FIRST_COME" else 0
        chosen = [v for v in rng.sample(range(len(vol_ids)), wanted) if (v, day) not in busy_days]
        busy_days.update((v, day) for v in chosen)
        task_id = uuid.uuid4()
        tasks.append(task_row(task_id, start, rng.choice([2, 3, 4]), slots, len(chosen), "OPEN", mode))
        signups.extend((uuid.uuid4(), task_id, vol_ids[v], "CONFIRMED", None, None, now, now, None, None, None, None)
                       for v in chosen)

    await _copy(session, "volunteers", ["id", "name", "phone", "birth_date", "town_id", "skills", "home_lat",
                                        "home_lng", "guardian_name", "guardian_consent_at", "total_hours",
                                        "created_at"], volunteers)
    await _copy(session, "accounts", ["id", "phone", "name", "password_hash", "volunteer_id", "token_version",
                                      "created_at"], accounts)
    await _copy(session, "role_grants", ["id", "account_id", "role", "organization_id", "team_id", "granted_by",
                                         "created_at"], grants)
    await _copy(session, "teams", ["id", "organization_id", "name", "is_commando", "active_from", "active_until",
                                   "created_at"], teams)
    await _copy(session, "team_members", ["team_id", "volunteer_id", "role", "joined_at"], members)
    await _copy(session, "tasks", ["id", "organization_id", "project_id", "team_id", "town_id", "title",
                                   "description", "address", "lat", "lng", "starts_at", "ends_at", "signup_deadline",
                                   "slots", "filled_slots", "required_skills", "min_age", "assignment_mode",
                                   "checkin_radius_m", "checkin_secret", "status", "matching_requested_at",
                                   "matched_at", "created_by", "created_at"], tasks)
    await _copy(session, "signups", ["id", "task_id", "volunteer_id", "status", "match_score", "added_by",
                                     "applied_at", "decided_at", "checked_in_at", "checked_out_at", "cancelled_at",
                                     "cancel_reason"], signups)
    await _copy(session, "service_records", ["id", "volunteer_id", "task_id", "signup_id", "started_at", "ended_at",
                                             "hours", "status", "source", "note", "recorded_by", "approved_by",
                                             "approved_at", "rejected_reason", "created_at"], records)
    await rebuild_totals(session)
    log.info("demo data (%s): %d volunteers, %d teams, %d tasks, %d service records", scale, len(volunteers),
             len(teams), len(tasks), len(records))
    return True
