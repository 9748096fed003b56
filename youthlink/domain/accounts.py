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
from youthlink.domain import audit, personal_data, policies
from youthlink.domain.actor import Actor, Grant
from youthlink.domain.inputs import COMMON_PASSWORDS, Login, RegisterVolunteer
from youthlink.domain.throttle import LoginThrottle
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
    # A volunteer imported by an organization (no login yet) claims that profile by registering.
    imported = await session.scalar(select(Volunteer).where(Volunteer.phone == command.phone).with_for_update())
    id_card = await _checked_id_card(session, command.id_card, imported.id if imported else None) \
        if command.id_card else None
    volunteer = imported or Volunteer(phone=command.phone)
    volunteer.name = command.name
    volunteer.birth_date = command.birth_date
    volunteer.town_id = command.town_id or volunteer.town_id
    volunteer.skills = sorted(set(command.skills) | set(volunteer.skills or []))
    if command.location:
        volunteer.home_lat, volunteer.home_lng = command.location.lat, command.location.lng
    if minor and command.guardian_consent:
        volunteer.guardian_name, volunteer.guardian_consent_at = command.guardian_name, datetime.now(UTC)
    if id_card:
        volunteer.id_card_cipher = personal_data.encrypt_id_card(id_card)
        volunteer.id_card_hash = personal_data.keyed_hash(id_card, "id-card")
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


async def login(session: AsyncSession, command: Login, throttle: LoginThrottle | None = None,
                client_address: str = "") -> Account:
    """Phone + password. After too many failures (per phone and per client address) answers LOGIN_THROTTLED."""
    if throttle is not None:
        await throttle.check(command.phone, client_address)
    account = await session.scalar(select(Account).where(Account.phone == command.phone))
    try:
        if account is None:
            # Hash anyway, so a missing phone takes as long as a wrong password.
            _hasher.hash(command.password)
            raise VerificationError
        _hasher.verify(account.password_hash, command.password)
    except VerificationError:
        if throttle is not None:
            await throttle.failed(command.phone, client_address)
        raise Unauthenticated("INVALID_CREDENTIALS", "手机号或密码错误", "password") from None
    if throttle is not None:
        await throttle.succeeded(command.phone)
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = hash_password(command.password)
    return account


async def logout(session: AsyncSession, actor: Actor) -> Account:
    """Revoke every token of the account (all devices): tokens carry the version, which moves on."""
    policies.require_login(actor)
    account = await session.scalar(select(Account).where(Account.id == actor.account_id).with_for_update())
    if account is None:
        raise Unauthenticated("UNAUTHENTICATED", "登录已失效，请重新登录")
    account.token_version += 1
    audit.record(session, account.id, "account.logout", "account", account.id)
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
    """The account with its grants, in one statement (every authenticated request starts here)."""
    account, grant = Account.__table__.c, RoleGrant.__table__.c  # Core: a plain statement, no ORM machinery
    rows = (await session.execute(
        select(account.volunteer_id, account.token_version, grant.role, grant.organization_id, grant.team_id)
        .select_from(Account.__table__.outerjoin(RoleGrant.__table__, grant.account_id == account.id))
        .where(account.id == account_id)
    )).all()
    if not rows or (token_version is not None and rows[0].token_version != token_version):
        raise Unauthenticated("UNAUTHENTICATED", "登录已失效，请重新登录")
    grants = tuple(Grant(Role(r.role), r.organization_id, r.team_id) for r in rows if r.role is not None)
    return Actor(account_id=account_id, volunteer_id=rows[0].volunteer_id, grants=grants)


async def _checked_id_card(session: AsyncSession, raw: str, volunteer_id: uuid.UUID | None = None) -> str:
    number = personal_data.normalize_id_card(raw)
    owner = await session.scalar(
        select(Volunteer.id).where(Volunteer.id_card_hash == personal_data.keyed_hash(number, "id-card"))
    )
    if owner is not None and owner != volunteer_id:
        raise Conflict("ID_CARD_TAKEN", "该身份证号已登记", "idCard")
    return number


async def set_id_card(session: AsyncSession, actor: Actor, raw: str) -> Volunteer:
    """A volunteer records their own ID-card number (needed for certificates); stored encrypted."""
    volunteer_id = policies.require_volunteer(actor)
    volunteer = await session.scalar(select(Volunteer).where(Volunteer.id == volunteer_id).with_for_update())
    assert volunteer is not None
    number = await _checked_id_card(session, raw, volunteer.id)
    volunteer.id_card_cipher = personal_data.encrypt_id_card(number)
    volunteer.id_card_hash = personal_data.keyed_hash(number, "id-card")
    audit.record(session, actor.account_id, "volunteer.set_id_card", "volunteer", volunteer.id)
    return volunteer


async def record_guardian_consent(session: AsyncSession, actor: Actor, guardian_name: str) -> Volunteer:
    """A minor's guardian consent, recorded by the volunteer with the guardian's name."""
    volunteer_id = policies.require_volunteer(actor)
    name = guardian_name.strip()
    if not 1 <= len(name) <= 64:
        raise Invalid("GUARDIAN_NAME_REQUIRED", "请填写监护人姓名", "guardianName")
    volunteer = await session.scalar(select(Volunteer).where(Volunteer.id == volunteer_id).with_for_update())
    assert volunteer is not None
    volunteer.guardian_name = name
    volunteer.guardian_consent_at = datetime.now(UTC)
    audit.record(session, actor.account_id, "volunteer.guardian_consent", "volunteer", volunteer.id)
    return volunteer


async def read_id_card(session: AsyncSession, actor: Actor, volunteer: Volunteer, may_read_full: bool) -> str | None:
    """The full number for the person and for admins who need it (each admin read leaves an audit row)."""
    if volunteer.id_card_cipher is None:
        return None
    number = personal_data.decrypt_id_card(volunteer.id_card_cipher)
    if actor.volunteer_id == volunteer.id:
        return number
    if not may_read_full:
        return personal_data.mask_id_card(number)
    audit.record(session, actor.account_id, "volunteer.read_id_card", "volunteer", volunteer.id)
    return number
