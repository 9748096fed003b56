"""Accounts: volunteer registration, login, tokens, and turning a token back into an Actor."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.config import get_settings
from youthlink.db.models import Account, RoleGrant, Town, Volunteer
from youthlink.db.models.enums import Role
from youthlink.domain import audit
from youthlink.domain.actor import ANONYMOUS, Actor, Grant
from youthlink.domain.inputs import COMMON_PASSWORDS, Login, RegisterVolunteer
from youthlink.errors import Conflict, Invalid, NotFound, Unauthenticated

_hasher = PasswordHasher()
TOKEN_ALGORITHM = "HS256"
MIN_PASSWORD_LENGTH = 8
MIN_AGE = 6
ADULT_AGE = 18


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password_strength(password: str, phone: str) -> None:
    lowered = password.lower()
    if (
        len(password) < MIN_PASSWORD_LENGTH
        or lowered in COMMON_PASSWORDS
        or phone in password
        or len(set(password)) < 4
    ):
        raise Invalid("WEAK_PASSWORD", "密码太弱：至少 8 位，不能含手机号或为常见密码", "password")


def age_on(birth_date: date, day: date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def issue_token(account: Account) -> str:
    settings = get_settings()
    now = datetime.now(UTC)
    claims = {
        "sub": str(account.id),
        "ver": account.token_version,
        "iat": now,
        "exp": now + timedelta(minutes=settings.access_token_minutes),
    }
    return jwt.encode(claims, settings.secret(), algorithm=TOKEN_ALGORITHM)


async def register_volunteer(session: AsyncSession, command: RegisterVolunteer) -> tuple[Account, Volunteer]:
    check_password_strength(command.password, command.phone)
    today = datetime.now(UTC).date()
    if command.birth_date >= today or age_on(command.birth_date, today) > 120:
        raise Invalid("INVALID_BIRTH_DATE", "出生日期不正确", "birthDate")
    if age_on(command.birth_date, today) < MIN_AGE:
        raise Invalid("TOO_YOUNG", f"注册志愿者须年满 {MIN_AGE} 周岁", "birthDate")
    minor = age_on(command.birth_date, today) < ADULT_AGE
    if command.guardian_consent and not command.guardian_name:
        raise Invalid("GUARDIAN_NAME_REQUIRED", "请填写监护人姓名", "guardianName")
    if command.town_id is not None and await session.get(Town, command.town_id) is None:
        raise NotFound("TOWN_NOT_FOUND", "镇街不存在", "townId")
    taken = await session.scalar(select(Account.id).where(Account.phone == command.phone))
    if taken is not None:
        raise Conflict("PHONE_TAKEN", "该手机号已注册", "phone")

    volunteer = Volunteer(
        name=command.name,
        phone=command.phone,
        birth_date=command.birth_date,
        town_id=command.town_id,
        skills=command.skills,
        home_lat=command.location.lat if command.location else None,
        home_lng=command.location.lng if command.location else None,
        guardian_name=command.guardian_name if minor else None,
        guardian_consent_at=datetime.now(UTC) if minor and command.guardian_consent else None,
    )
    session.add(volunteer)
    await session.flush()
    account = Account(
        phone=command.phone, name=command.name, password_hash=hash_password(command.password),
        volunteer_id=volunteer.id,
    )
    session.add(account)
    await session.flush()
    session.add(RoleGrant(account_id=account.id, role=Role.VOLUNTEER))
    audit.record(session, account.id, "volunteer.register", "volunteer", volunteer.id)
    return account, volunteer


async def login(session: AsyncSession, command: Login) -> Account:
    account = await session.scalar(select(Account).where(Account.phone == command.phone))
    if account is None:
        # Hash anyway, so a missing phone takes as long as a wrong password.
        _hasher.hash(command.password)
        raise Unauthenticated("INVALID_CREDENTIALS", "手机号或密码错误", "password")
    try:
        _hasher.verify(account.password_hash, command.password)
    except VerificationError:
        raise Unauthenticated("INVALID_CREDENTIALS", "手机号或密码错误", "password") from None
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = hash_password(command.password)
    return account


async def create_admin(
    session: AsyncSession,
    *,
    role: Role,
    phone: str,
    password: str,
    name: str,
    organization_id: uuid.UUID | None,
    granted_by: uuid.UUID | None = None,
) -> Account:
    """Create (or reuse, by phone) an account and grant it an admin role. Used by the CLI and admins."""
    check_password_strength(password, phone)
    if role is Role.ORG_ADMIN and organization_id is None:
        raise Invalid("ORGANIZATION_REQUIRED", "组织管理员必须指定组织", "organization")
    if role is Role.CITY_ADMIN:
        organization_id = None
    account = await session.scalar(select(Account).where(Account.phone == phone))
    if account is None:
        account = Account(phone=phone, name=name, password_hash=hash_password(password))
        session.add(account)
        await session.flush()
    existing = await session.scalar(
        select(RoleGrant.id).where(
            RoleGrant.account_id == account.id,
            RoleGrant.role == role,
            RoleGrant.organization_id.is_not_distinct_from(organization_id),
        )
    )
    if existing is None:
        session.add(RoleGrant(account_id=account.id, role=role, organization_id=organization_id,
                              granted_by=granted_by))
        audit.record(session, granted_by, "role.grant", "account", account.id, role=role.value,
                     organization_id=organization_id)
    return account


async def actor_from_token(session: AsyncSession, token: str) -> Actor:
    """The Actor a bearer token stands for; any invalid, expired or revoked token is UNAUTHENTICATED."""
    try:
        claims = jwt.decode(token, get_settings().secret(), algorithms=[TOKEN_ALGORITHM],
                            options={"require": ["sub", "exp", "ver"]})
        account_id = uuid.UUID(claims["sub"])
    except (jwt.PyJWTError, ValueError):
        raise Unauthenticated("UNAUTHENTICATED", "登录已失效，请重新登录") from None
    return await load_actor(session, account_id, token_version=claims["ver"])


async def load_actor(session: AsyncSession, account_id: uuid.UUID, token_version: int | None = None) -> Actor:
    account = await session.get(Account, account_id)
    if account is None or (token_version is not None and account.token_version != token_version):
        raise Unauthenticated("UNAUTHENTICATED", "登录已失效，请重新登录")
    rows = await session.execute(
        select(RoleGrant.role, RoleGrant.organization_id, RoleGrant.team_id).where(
            RoleGrant.account_id == account_id
        )
    )
    grants = tuple(Grant(Role(r.role), r.organization_id, r.team_id) for r in rows)
    return Actor(account_id=account.id, volunteer_id=account.volunteer_id, grants=grants)


__all__ = ["ANONYMOUS", "Actor"]
