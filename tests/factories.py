"""Small async factories with sensible defaults; every phone number is unique within a run."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from youthlink.db.models import Account, Organization, Task, Town
from youthlink.db.models.enums import AssignmentMode, Role
from youthlink.domain import accounts, tasks
from youthlink.domain.actor import Actor
from youthlink.domain.inputs import CreateTask, RegisterVolunteer

_phones = itertools.count(int(uuid.uuid4().int % 10_000_000))
PASSWORD = "a long passphrase"


def next_phone() -> str:
    return f"15{next(_phones) % 1_000_000_000:09d}"


async def organization(db: Any, name: str = "温岭市社会治理志愿者联盟") -> Organization:
    async with db.read() as session:
        org = await session.scalar(select(Organization).where(Organization.name == name))
    assert org is not None
    return org


async def town(db: Any, code: str = "shitang") -> Town:
    async with db.read() as session:
        found = await session.scalar(select(Town).where(Town.code == code))
    assert found is not None
    return found


async def admin(db: Any, role: Role = Role.ORG_ADMIN, org_name: str | None = "温岭市社会治理志愿者联盟"
                ) -> tuple[Actor, str]:
    """An admin account; returns its Actor and a bearer token."""
    org_id = (await organization(db, org_name)).id if org_name and role is Role.ORG_ADMIN else None
    async with db.unit_of_work() as session:
        account = await accounts.create_admin(session, role=role, phone=next_phone(), password=PASSWORD,
                                              name="管理员", organization_id=org_id)
    async with db.read() as session:
        actor = await accounts.load_actor(session, account.id)
        fresh = await session.get(Account, account.id)
    assert fresh is not None
    return actor, accounts.issue_token(fresh)


async def volunteer(db: Any, *, skills: list[str] | None = None, birth_date: date = date(2000, 1, 1),
                    guardian_consent: bool = False, lat: float = 28.26, lng: float = 121.61) -> tuple[Actor, str]:
    command = RegisterVolunteer(
        name="志愿者", phone=next_phone(), password=PASSWORD, birth_date=birth_date, skills=skills or [],
        location={"lat": lat, "lng": lng}, guardian_name="监护人" if guardian_consent else None,
        guardian_consent=guardian_consent,
    )
    async with db.unit_of_work() as session:
        account, _ = await accounts.register_volunteer(session, command)
    async with db.read() as session:
        actor = await accounts.load_actor(session, account.id)
    return actor, accounts.issue_token(account)


async def task(db: Any, actor: Actor, *, slots: int = 10, starts_in: timedelta = timedelta(days=2),
               hours: float = 3, mode: AssignmentMode = AssignmentMode.FIRST_COME, **overrides: Any) -> Task:
    org = await organization(db)
    starts = datetime.now(UTC) + starts_in
    values: dict[str, Any] = dict(
        organization_id=org.id, title="海洋净滩 · 石塘", starts_at=starts, ends_at=starts + timedelta(hours=hours),
        slots=slots, assignment_mode=mode, location={"address": "石塘镇金沙滩", "lat": 28.26, "lng": 121.61},
    )
    values.update(overrides)
    async with db.unit_of_work() as session:
        return await tasks.create_task(session, actor, CreateTask(**values))


_shared_hash: str | None = None


async def many_volunteers(db: Any, count: int) -> list[tuple[uuid.UUID, str]]:
    """`count` adult volunteers with accounts (one password hash shared, to keep the suite fast)."""
    global _shared_hash
    from youthlink.db.models import RoleGrant, Volunteer

    if _shared_hash is None:
        _shared_hash = accounts.hash_password(PASSWORD)
    made: list[Account] = []
    async with db.unit_of_work() as session:
        for _ in range(count):
            phone = next_phone()
            vol = Volunteer(name="志愿者", phone=phone, birth_date=date(1999, 9, 9), skills=[], home_lat=28.26,
                            home_lng=121.61)
            session.add(vol)
            await session.flush()
            account = Account(phone=phone, name="志愿者", password_hash=_shared_hash, volunteer_id=vol.id)
            session.add(account)
            await session.flush()
            session.add(RoleGrant(account_id=account.id, role=Role.VOLUNTEER))
            made.append(account)
    return [(a.volunteer_id, accounts.issue_token(a)) for a in made if a.volunteer_id is not None]
