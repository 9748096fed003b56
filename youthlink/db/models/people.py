"""People: volunteers, the accounts that log in, and the roles those accounts hold."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from youthlink.db.base import Base, created_at, uuid_pk
from youthlink.db.models._types import str_enum
from youthlink.db.models.enums import Role

PHONE_PATTERN = "^1[3-9][0-9]{9}$"


class Volunteer(Base):
    __tablename__ = "volunteers"
    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(11), unique=True)
    # The ID-card number is optional; stored encrypted, with a keyed hash for uniqueness and look-ups.
    id_card_cipher: Mapped[bytes | None] = mapped_column(LargeBinary)
    id_card_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    birth_date: Mapped[date] = mapped_column(Date)
    town_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("towns.id"), index=True)
    skills: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list, server_default=text("'{}'"))
    home_lat: Mapped[float | None] = mapped_column(Float)
    home_lng: Mapped[float | None] = mapped_column(Float)
    guardian_name: Mapped[str | None] = mapped_column(String(64))
    guardian_consent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Derived from the ledger (approved records + adjustments); rebuilt nightly, never edited by hand.
    total_hours: Mapped[Decimal] = mapped_column(Numeric(10, 1), default=Decimal("0"), server_default="0")
    created_at: Mapped[datetime] = created_at()
    __table_args__ = (
        CheckConstraint(f"phone ~ '{PHONE_PATTERN}'", name="phone_format"),
        CheckConstraint("total_hours >= 0", name="total_hours_non_negative"),
        CheckConstraint("(home_lat IS NULL) = (home_lng IS NULL)", name="home_location_complete"),
        Index("ix_volunteers_skills", "skills", postgresql_using="gin"),
        # Registered, new and star-level counts for statistics, read from the index alone.
        Index("ix_volunteers_created_at_total_hours", "created_at", "total_hours"),
    )


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[uuid.UUID] = uuid_pk()
    phone: Mapped[str] = mapped_column(String(11), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(256))
    volunteer_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("volunteers.id", ondelete="SET NULL"), unique=True
    )
    # Bumped on logout / password change: tokens carry it, and older ones stop working.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = created_at()
    __table_args__ = (CheckConstraint(f"phone ~ '{PHONE_PATTERN}'", name="phone_format"),)


class RoleGrant(Base):
    __tablename__ = "role_grants"
    id: Mapped[uuid.UUID] = uuid_pk()
    account_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role] = mapped_column(str_enum(Role, "role"))
    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    team_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("teams.id", ondelete="CASCADE"), index=True
    )
    granted_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = created_at()
    __table_args__ = (
        # Each role carries exactly the scope it needs.
        CheckConstraint(
            "(role = 'CITY_ADMIN' AND organization_id IS NULL AND team_id IS NULL)"
            " OR (role = 'ORG_ADMIN' AND organization_id IS NOT NULL AND team_id IS NULL)"
            " OR (role = 'TEAM_LEADER' AND team_id IS NOT NULL AND organization_id IS NULL)"
            " OR (role = 'VOLUNTEER' AND organization_id IS NULL AND team_id IS NULL)",
            name="scope_matches_role",
        ),
        Index(
            "uq_role_grants_scope", "account_id", "role", "organization_id", "team_id",
            unique=True, postgresql_nulls_not_distinct=True,
        ),
    )
