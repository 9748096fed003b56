"""Reference data (from youthlink/data/reference.yaml) and synthetic demo data.

Reference data is idempotent: run it on every start. Demo data is loaded once into an empty database;
`city` scale gives the city's real size (66,000 volunteers, 755 teams, 2,000 tasks a month and a year of
service records: about a million sign-ups and as many approved records) for the benchmarks. It is written
with COPY, streamed (rows are generated as they are sent, never held in a list), and the two big tables
load with their keys, indexes and foreign keys set aside and restored afterwards in one pass each, so
`youthlink seed --demo --scale city` takes about 40 to 60 seconds (two cores) and some 300 MB. Past tasks of
the projects that record service outcomes get their reports (`load_demo_outcomes`; `youthlink seed --demo` on
a demo loaded before outcomes existed adds them).
"""

from __future__ import annotations

import base64
import functools
import logging
import os
import random
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.config import get_settings
from youthlink.db.models import (
    Account,
    Organization,
    Project,
    ProjectPartner,
    ServiceOutcome,
    Task,
    Town,
    Volunteer,
)
from youthlink.db.models.enums import LitterCategory, OrganizationKind, OutcomeKind, ProblemCategory, Role, TaskStatus
from youthlink.domain import rollups
from youthlink.domain.accounts import hash_password
from youthlink.domain.hours.deadlines import due_on
from youthlink.domain.hours.ledger import award_star_levels, rebuild_totals

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
        children.append({"id": uuid.uuid4(), "name": f"共青团{town.name}委员会",
                         "kind": OrganizationKind.TOWN_COMMITTEE, "parent_id": city.id, "town_id": town.id,
                         "description": f"{short}团委", "illustrative": False})
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
                         "parent_id": committee.id, "town_id": town.id,
                         "description": f"青年之家分部（{hq_org.name}指导）", "illustrative": False})
    await _upsert(session, Organization, branches, "name")
    orgs = {o.name: o for o in (await session.scalars(select(Organization))).all()}
    await _upsert(session, Project, [
        {"id": uuid.uuid4(), "name": p["name"], "owner_organization_id": orgs[p["owner"]].id,
         "description": p.get("description", ""), "outcome_kind": p.get("outcome")} for p in data["projects"]
    ], "name")
    # Brand projects loaded before they declared an outcome kind get it now.
    for p in data["projects"]:
        if p.get("outcome"):
            await session.execute(update(Project).where(Project.name == p["name"], Project.outcome_kind.is_(None))
                                  .values(outcome_kind=p["outcome"]))
    projects = {p.name: p for p in (await session.scalars(select(Project))).all()}
    partners = [{"project_id": projects[p["name"]].id, "organization_id": orgs[name].id}
                for p in data["projects"] for name in p.get("partners", [])]
    if partners:
        await session.execute(insert(ProjectPartner).values(partners).on_conflict_do_nothing())


@dataclass(frozen=True)
class DemoSize:
    volunteers: int
    teams: int  # volunteer teams in all, the commando team included
    past_tasks: int
    upcoming_tasks: int
    participants: tuple[int, int]
    history_days: int


SIZES: dict[str, DemoSize] = {
    # Two teams for each of the 41 organizations, plus the commando team.
    "small": DemoSize(volunteers=300, teams=83, past_tasks=60, upcoming_tasks=40, participants=(4, 12),
                      history_days=300),
    # The city: 755 volunteer teams over the 41 organizations (the commando team included), 2,000 tasks a
    # month for a year and the coming month's, about 1M sign-ups and as many approved service records.
    "city": DemoSize(volunteers=66_000, teams=755, past_tasks=24_000, upcoming_tasks=2_000,
                     participants=(30, 54), history_days=365),
}

DEMO_ACCOUNTS = [
    # phone, name, role, organization name (None: city-wide)
    ("13900000000", "市团委管理员（演示）", Role.CITY_ADMIN, None),
    ("13900000001", "社会治理联盟管理员（演示）", Role.ORG_ADMIN, "温岭市社会治理志愿者联盟"),
    ("13900000002", "石塘团委管理员（演示）", Role.ORG_ADMIN, "共青团石塘镇委员会"),
]

# The tables that get a million rows at city scale: loaded with their keys and indexes set aside.
BULK_TABLES = ("signups", "service_records")


async def _copy(session: AsyncSession, table: str, columns: list[str], records: Iterable[tuple[Any, ...]]) -> None:
    """COPY rows (binary) in the session's transaction; a generator is streamed, never held in memory."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.copy_records_to_table(table, records=records, columns=columns)


async def _ddl(session: AsyncSession, statement: str) -> None:
    connection = await session.connection()
    await connection.exec_driver_sql(statement)


_TABLE_OIDS = "SELECT to_regclass(name)::oid FROM unnest(CAST(:tables AS text[])) AS name"


async def _set_aside_keys(session: AsyncSession, tables: Sequence[str]) -> list[str]:
    """Drop the primary keys, unique constraints, plain indexes and foreign keys of `tables` (and the foreign
    keys into them) before a bulk load; return the DDL that restores them as they were (pg_get_constraintdef,
    pg_get_indexdef).

    Maintaining random-UUID B-trees and checking foreign keys row by row is what makes a million-row COPY
    slow; an index built over the loaded rows is one sort, and re-adding a foreign key validates every row
    in one join. CHECK and NOT NULL constraints stay, so COPY still enforces them, and so do unique, partial
    and expression indexes (a re-created predicate can read differently from the migration's). It all
    happens in the caller's transaction: on any failure the schema is as it was.
    """
    params = {"tables": list(tables)}
    keys = (await session.execute(text(f"""
        SELECT conrelid::regclass::text AS tbl, quote_ident(conname) AS name, CAST(contype AS text) AS contype,
               pg_get_constraintdef(oid) AS definition
        FROM pg_constraint
        WHERE (contype IN ('p', 'u', 'x') AND conrelid IN ({_TABLE_OIDS}))
           OR (contype = 'f' AND (conrelid IN ({_TABLE_OIDS}) OR confrelid IN ({_TABLE_OIDS})))
        ORDER BY conrelid::regclass::text, conname
    """), params)).all()
    indexes = (await session.execute(text(f"""
        SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
        FROM pg_index i
        WHERE i.indrelid IN ({_TABLE_OIDS}) AND NOT i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        ORDER BY 1
    """), params)).all()
    foreign = [k for k in keys if k.contype == "f"]
    own = [k for k in keys if k.contype != "f"]
    for key in [*foreign, *own]:
        await _ddl(session, f"ALTER TABLE {key.tbl} DROP CONSTRAINT {key.name}")
    for index in indexes:
        await _ddl(session, f"DROP INDEX {index.name}")
    return [
        *(f"ALTER TABLE {k.tbl} ADD CONSTRAINT {k.name} {k.definition}" for k in own),
        *(index.definition for index in indexes),
        *(f"ALTER TABLE {k.tbl} ADD CONSTRAINT {k.name} {k.definition}" for k in foreign),
    ]


# Every completed sign-up earned an approved record with its task's facts, approved 1 to 5 days later. The
# per-task facts computed in Python (local date, recording deadline, hours) come in as arrays. The subquery
# is not flattened (its target list is volatile), so random() runs once per row.
RECORDS_FROM_SIGNUPS = """
INSERT INTO service_records (id, volunteer_id, organization_id, task_id, signup_id, activity_name, service_date,
                             place, content, person_in_charge, started_at, ended_at, hours, status, source, note,
                             due_on, approved_by, approved_at, created_at)
SELECT gen_random_uuid(), c.volunteer_id, c.organization_id, c.task_id, c.signup_id, c.title, c.service_date,
       c.address, c.description, '', c.starts_at, c.ends_at, c.hours, 'APPROVED', 'CHECK_IN', '', c.due,
       CAST(:approver AS uuid), c.approved_at, c.approved_at
FROM (
    SELECT s.volunteer_id, t.organization_id, t.id AS task_id, s.id AS signup_id, t.title, t.address,
           t.description, t.starts_at, t.ends_at, f.service_date, f.due, f.hours,
           t.starts_at + (1 + floor(random() * 5)) * interval '1 day' AS approved_at
    FROM signups s
    JOIN tasks t ON t.id = s.task_id
    JOIN unnest(CAST(:task_ids AS uuid[]), CAST(:dates AS date[]), CAST(:dues AS date[]),
                CAST(:hours AS numeric[])) AS f (task_id, service_date, due, hours) ON f.task_id = s.task_id
    WHERE s.status = 'COMPLETED'
) c
"""


def _phone(i: int) -> str:
    return f"137{i:08d}"


def _id_factory() -> Callable[[], uuid.UUID]:
    """Random version-4 ids without a system call each (uuid4 reads os.urandom every time)."""
    bits = random.Random().getrandbits  # seeded from os.urandom: ids differ on every load

    def new_id() -> uuid.UUID:
        return uuid.UUID(int=bits(128), version=4)

    return new_id


def _checkin_secret() -> str:
    """Like pyotp.random_base32(): 32 base-32 characters, 160 random bits."""
    return base64.b32encode(os.urandom(20)).decode("ascii")


def _pick(rng: random.Random, population: range, wanted: int, taken: set[int]) -> list[int]:
    """Up to `wanted` distinct volunteers not yet serving that day (`taken`, updated); two draws a place."""
    chosen: list[int] = []
    if wanted <= 0:
        return chosen
    for v in rng.choices(population, k=min(len(population), 2 * wanted)):
        if v not in taken:
            taken.add(v)
            chosen.append(v)
            if len(chosen) == wanted:
                break
    return chosen


async def load_demo(session: AsyncSession, scale: Scale = "small", seed: int = 2026) -> bool:
    """Synthetic teams, volunteers, tasks and a history of approved hours. False if already loaded."""
    if await session.scalar(select(func.count()).select_from(Volunteer)):
        log.info("demo data: the database already has volunteers; nothing loaded")
        return False
    size = SIZES[scale]
    rng = random.Random(seed)
    new_id = _id_factory()
    tz = ZoneInfo(get_settings().city_timezone)
    now = datetime.now(UTC)
    today = now.astimezone(tz).date()
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
        account_id = new_id()
        admin_ids[phone] = account_id
        accounts.append((account_id, phone, name, password_hash, None, 0, now))
        grants.append((new_id(), account_id, role.value, by_name[org_name].id if org_name else None, None, None, now))
    approver = admin_ids["13900000000"]

    # Teams: spread evenly over the organizations (in name order, the first ones get one more when it does
    # not divide); the emergency-rescue org also has a commando team.
    teams: list[tuple[Any, ...]] = []
    team_org: list[uuid.UUID] = []
    rescue = by_name.get("温岭市青年应急救援队")
    owners = [o for o in orgs if o.kind is not OrganizationKind.CITY_COMMITTEE]
    per_org, extra = divmod(size.teams - (1 if rescue is not None else 0), len(owners))
    for k, org in enumerate(owners):
        for n in range(per_org + (1 if k < extra else 0)):
            teams.append((new_id(), org.id, f"{org.name.removeprefix('温岭市')}志愿服务{n + 1}队", False, None, None,
                          now))
            team_org.append(org.id)
    if rescue is not None:
        teams.append((new_id(), rescue.id, "青年突击队（防台抗台）", True, today - timedelta(days=3),
                      today + timedelta(days=27), now))
        team_org.append(rescue.id)

    # Volunteers, each with an account, a home near their town and one team (the first ones lead one each).
    volunteers: list[tuple[Any, ...]] = []  # without total_hours: known once their tasks are drawn
    members: list[tuple[Any, ...]] = []
    vol_ids: list[uuid.UUID] = []
    for i in range(size.volunteers):
        vid = new_id()
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
            "监护人" if minor else None, created if minor else None, created,
        ))
        account_id = new_id()
        accounts.append((account_id, _phone(i), name, password_hash, vid, 0, created))
        grants.append((new_id(), account_id, Role.VOLUNTEER.value, None, None, None, created))
        if i < len(teams):
            members.append((teams[i][0], vid, "LEADER", created))
        else:
            members.append((teams[rng.randrange(len(teams))][0], vid, "MEMBER", created))

    # Tasks: a year of past ones (completed, with approved hours) and the coming month's open ones. Each
    # volunteer serves at most one task a day, so no two of their records overlap. Participants are kept as
    # volunteer numbers per task; the sign-up rows are generated while they are copied.
    tasks: list[tuple[Any, ...]] = []
    past: list[tuple[uuid.UUID, datetime, int, list[int]]] = []  # task, start, hours, volunteers
    upcoming: list[tuple[uuid.UUID, list[int]]] = []
    busy: dict[int, set[int]] = {}  # day (days from today) -> volunteers serving that day
    served = [0] * len(vol_ids)  # approved hours per volunteer
    everyone = range(len(vol_ids))
    titles = ["河道巡查", "海洋净滩", "关爱候鸟儿童", "爱暴走公益行", "社区普法", "义诊服务", "文明交通劝导",
              "敬老助残", "青年之家活动"]

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
                start - timedelta(hours=12), slots, filled, skills, None, mode, 500, _checkin_secret(), status,
                None, None, approver, start - timedelta(days=7))

    for _ in range(size.past_tasks):
        days_ago = rng.randint(1, size.history_days)
        day = today - timedelta(days=days_ago)
        start = datetime.combine(day, time(rng.choice([8, 9, 13, 14, 19])), tz).astimezone(UTC)
        hours = rng.choice([2, 3, 3, 4])
        wanted = rng.randint(*size.participants)
        chosen = _pick(rng, everyone, wanted, busy.setdefault(-days_ago, set()))
        task_id = new_id()
        tasks.append(task_row(task_id, start, hours, wanted, len(chosen), "COMPLETED", "FIRST_COME"))
        past.append((task_id, start, hours, chosen))
        for v in chosen:
            served[v] += hours

    for _ in range(size.upcoming_tasks):
        days_ahead = rng.randint(1, 30)
        day = today + timedelta(days=days_ahead)
        start = datetime.combine(day, time(rng.choice([8, 9, 13, 14])), tz).astimezone(UTC)
        slots = rng.randint(*size.participants)
        mode = "MATCHED" if rng.random() < 0.2 else "FIRST_COME"
        wanted = rng.randint(0, slots // 2) if mode == "FIRST_COME" else 0
        chosen = _pick(rng, everyone, wanted, busy.setdefault(days_ahead, set()))
        task_id = new_id()
        tasks.append(task_row(task_id, start, rng.choice([2, 3, 4]), slots, len(chosen), "OPEN", mode))
        upcoming.append((task_id, chosen))
    del busy

    def signup_rows() -> Iterator[tuple[Any, ...]]:
        early = [timedelta(minutes=m) for m in range(16)]  # checked in up to 15 minutes early
        late = [timedelta(minutes=m) for m in range(21)]  # checked out up to 20 minutes late
        for task_id, start, hours, chosen in past:
            end = start + timedelta(hours=hours)
            applied, decided = start - timedelta(days=3), start - timedelta(days=2)
            k = len(chosen)
            for v, before, after in zip(chosen, rng.choices(early, k=k), rng.choices(late, k=k), strict=True):
                yield (new_id(), task_id, vol_ids[v], "COMPLETED", None, None, applied, decided, start - before,
                       end + after, None, None)
        for task_id, chosen in upcoming:
            for v in chosen:
                yield (new_id(), task_id, vol_ids[v], "CONFIRMED", None, None, now, now, None, None, None, None)

    # Totals are written with the volunteers (rebuild_totals below then finds nothing to change, instead of
    # rewriting 66,000 rows and their indexes).
    await _copy(session, "volunteers", ["id", "name", "phone", "birth_date", "town_id", "skills", "home_lat",
                                        "home_lng", "guardian_name", "guardian_consent_at", "created_at",
                                        "total_hours"],
                ((*row, Decimal(hours)) for row, hours in zip(volunteers, served, strict=True)))
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
    counts = (len(volunteers), len(teams), len(tasks))
    del volunteers, accounts, grants, members, tasks

    restore = await _set_aside_keys(session, BULK_TABLES)
    await _ddl(session, "SET LOCAL maintenance_work_mem = '256MB'")  # for the index builds; this transaction only
    await _copy(session, "signups", ["id", "task_id", "volunteer_id", "status", "match_score", "added_by",
                                     "applied_at", "decided_at", "checked_in_at", "checked_out_at", "cancelled_at",
                                     "cancel_reason"], signup_rows())
    # Each past task's service date and recording deadline (10 working days after it ended), in the city's zone.
    deadline = functools.cache(due_on)
    result = await session.execute(text(RECORDS_FROM_SIGNUPS), {
        "approver": approver,
        "task_ids": [task_id for task_id, *_ in past],
        "dates": [start.astimezone(tz).date() for _, start, _, _ in past],
        "dues": [deadline((start + timedelta(hours=hours)).astimezone(tz).date()) for _, start, hours, _ in past],
        "hours": [Decimal(hours) for _, _, hours, _ in past],
    })
    records = int(result.rowcount or 0)  # type: ignore[attr-defined]
    signups = sum(len(chosen) for *_, chosen in past) + sum(len(chosen) for _, chosen in upcoming)
    for statement in restore:
        await _ddl(session, statement)
    drifted = await rebuild_totals(session)
    if drifted:
        log.warning("demo data: %d volunteer totals differed from their approved records; rebuilt", drifted)
    await award_star_levels(session)
    # The records were written in bulk, without the stats.refresh jobs approvals record: build the statistics'
    # rollups now, or a calendar month, quarter or year would show nothing until the nightly rebuild.
    await rollups.rebuild(session, initial=True)
    reported = await load_demo_outcomes(session, seed)
    await _ddl(session, "ANALYZE volunteers, accounts, role_grants, teams, team_members, tasks, signups, "
                        "service_records, service_outcomes, service_outcome_lines")
    log.info("demo data (%s): %d volunteers, %d teams, %d tasks, %d sign-ups, %d service records, %d outcome "
             "reports", scale, *counts, signups, records, reported)
    return True


# Litter a volunteer collects on a beach clean-up, in kg: (category, low, high, items per kg or None).
DEMO_LITTER = [(LitterCategory.PLASTIC, 0.3, 1.2, 25), (LitterCategory.FISHING_GEAR, 0.1, 0.8, None),
               (LitterCategory.GLASS, 0.05, 0.4, 4), (LitterCategory.METAL, 0.02, 0.2, 15),
               (LitterCategory.PAPER, 0.02, 0.15, None), (LitterCategory.OTHER, 0.05, 0.3, None)]


async def load_demo_outcomes(session: AsyncSession, seed: int = 2026) -> int:
    """Outcome reports for the demo's past tasks of projects that record them (nine in ten reported; a task's
    litter grows with its participants), recorded by the demo city admin the day after. Only tasks without a
    report get one, and whether a task is reported is decided by its id: running it again adds nothing, and on
    a demo loaded before outcomes existed it adds them. Returns how many reports were added."""
    recorder = await session.scalar(select(Account.id).where(Account.phone == DEMO_ACCOUNTS[0][0]))
    rows = (await session.execute(
        select(Task.id, Task.project_id, Task.organization_id, Task.starts_at, Project.outcome_kind, Task.ends_at,
               Task.filled_slots)
        .join(Project, Project.id == Task.project_id)
        .where(Project.outcome_kind.is_not(None), Task.starts_at < func.now(),
               Task.status.in_([TaskStatus.CLOSED, TaskStatus.COMPLETED]),
               Task.id.not_in(select(ServiceOutcome.task_id)))
        .order_by(Task.starts_at, Task.id)
    )).all()
    outcomes: list[tuple[Any, ...]] = []
    lines: list[tuple[Any, ...]] = []
    for task_id, project_id, org_id, starts_at, kind, ends_at, people in rows:
        rng = random.Random(f"{seed}:{task_id}")  # per task: the same decisions on every run
        if rng.random() >= 0.9:
            continue
        people = max(1, people)
        assert kind is not None
        if kind is OutcomeKind.LITTER:
            outcomes.append((task_id, project_id, org_id, starts_at, kind.value, None, None, "", recorder,
                             ends_at + timedelta(days=1)))
            for category, low, high, per_kg in DEMO_LITTER:
                if category is not LitterCategory.PLASTIC and rng.random() < 0.4:
                    continue
                kg = min(Decimal(9999), Decimal(str(round(rng.uniform(low, high) * people, 2))) + Decimal("0.1"))
                items = int(kg * per_kg) if per_kg and rng.random() < 0.5 else None
                lines.append((task_id, category.value, kind.value, kg, items))
        else:
            problems = rng.choice([0, 0, 0, 1, 1, 2, 3, 5])
            km = Decimal(str(round(rng.uniform(1.5, 12), 1)))
            outcomes.append((task_id, project_id, org_id, starts_at, kind.value, km, problems, "", recorder,
                             ends_at + timedelta(days=1)))
            counted: dict[ProblemCategory, int] = {}
            for _ in range(problems):
                if rng.random() < 0.8:
                    problem = rng.choice(list(ProblemCategory))
                    counted[problem] = counted.get(problem, 0) + 1
            lines.extend((task_id, c.value, kind.value, None, n) for c, n in counted.items())
    await _copy(session, "service_outcomes", ["task_id", "project_id", "organization_id", "starts_at", "kind",
                                              "patrol_km", "problems_reported", "note", "recorded_by", "recorded_at"],
                outcomes)
    await _copy(session, "service_outcome_lines", ["task_id", "category", "kind", "weight_kg", "count"], lines)
    return len(outcomes)
