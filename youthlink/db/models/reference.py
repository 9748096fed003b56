"""The city's structure: towns, organizations, teams, brand projects."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Date, Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from youthlink.db.base import Base, created_at, uuid_pk
from youthlink.db.models._types import str_enum
from youthlink.db.models.enums import OrganizationKind, OutcomeKind, TeamRole, TownKind


class Town(Base):
    __tablename__ = "towns"
    id: Mapped[uuid.UUID] = uuid_pk()
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[TownKind] = mapped_column(str_enum(TownKind, "town_kind"))
    lat: Mapped[float] = mapped_column(Float)
    lng: Mapped[float] = mapped_column(Float)


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[OrganizationKind] = mapped_column(str_enum(OrganizationKind, "organization_kind"))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    town_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("towns.id"), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # Demo organizations that are not named in public reports are flagged, and say so.
    illustrative: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = created_at()
    __table_args__ = (CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),)


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[uuid.UUID] = uuid_pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(128))
    # A youth commando team (青年突击队) is formed for an emergency and active for a bounded period.
    is_commando: Mapped[bool] = mapped_column(Boolean, default=False)
    active_from: Mapped[date | None] = mapped_column(Date)
    active_until: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = created_at()
    __table_args__ = (
        UniqueConstraint("organization_id", "name"),
        CheckConstraint(
            "active_until IS NULL OR active_from IS NULL OR active_until >= active_from", name="active_period"
        ),
    )


class TeamMember(Base):
    __tablename__ = "team_members"
    team_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    volunteer_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("volunteers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[TeamRole] = mapped_column(str_enum(TeamRole, "team_role"), default=TeamRole.MEMBER)
    joined_at: Mapped[datetime] = created_at()


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(128), unique=True)
    owner_organization_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    description: Mapped[str] = mapped_column(Text, default="")
    # The service outcome its tasks record (None: the project records none).
    outcome_kind: Mapped[OutcomeKind | None] = mapped_column(str_enum(OutcomeKind, "outcome_kind"))
    created_at: Mapped[datetime] = created_at()
    # The target of service_outcomes' (project, kind) foreign key: an outcome is of its project's kind.
    __table_args__ = (UniqueConstraint("id", "outcome_kind"),)


class ProjectPartner(Base):
    __tablename__ = "project_partners"
    project_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    organization_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class ProjectTeam(Base):
    __tablename__ = "project_teams"
    project_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    team_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True, index=True
    )
