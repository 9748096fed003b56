"""Service tasks and the sign-ups of volunteers to them."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from youthlink.db.base import Base, created_at, uuid_pk
from youthlink.db.models._types import str_enum
from youthlink.db.models.enums import ACTIVE, SLOT_HOLDING, AssignmentMode, SignupStatus, TaskStatus

_active_list = ", ".join(f"'{s.value}'" for s in ACTIVE)
_holding_list = ", ".join(f"'{s.value}'" for s in SLOT_HOLDING)


class Task(Base):
    __tablename__ = "tasks"
    id: Mapped[uuid.UUID] = uuid_pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    project_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("projects.id", ondelete="RESTRICT"), index=True
    )
    team_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("teams.id", ondelete="RESTRICT"), index=True
    )
    town_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("towns.id"), index=True)
    title: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str] = mapped_column(String(256))
    lat: Mapped[float] = mapped_column(Float)
    lng: Mapped[float] = mapped_column(Float)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    signup_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    slots: Mapped[int] = mapped_column(Integer)
    filled_slots: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    required_skills: Mapped[list[str]] = mapped_column(
        ARRAY(String(32)), default=list, server_default=text("'{}'")
    )
    min_age: Mapped[int | None] = mapped_column(Integer)
    # Matching: a volunteer's home must be within this distance of the task (a hard constraint), when set.
    match_radius_km: Mapped[float | None] = mapped_column(Float)
    assignment_mode: Mapped[AssignmentMode] = mapped_column(str_enum(AssignmentMode, "assignment_mode"))
    checkin_radius_m: Mapped[int] = mapped_column(Integer)
    checkin_secret: Mapped[str] = mapped_column(String(64))
    status: Mapped[TaskStatus] = mapped_column(str_enum(TaskStatus, "task_status"), index=True)
    # Set when an organization asks for matching before the deadline; the batch picks these up too.
    matching_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    matched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = created_at()
    __table_args__ = (
        CheckConstraint("slots > 0", name="slots_positive"),
        CheckConstraint("filled_slots BETWEEN 0 AND slots", name="filled_within_slots"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("lat BETWEEN -90 AND 90 AND lng BETWEEN -180 AND 180", name="coordinates"),
        CheckConstraint("min_age IS NULL OR min_age BETWEEN 0 AND 100", name="min_age_range"),
        CheckConstraint("checkin_radius_m > 0", name="radius_positive"),
        CheckConstraint("match_radius_km IS NULL OR match_radius_km > 0", name="match_radius_positive"),
        Index("ix_tasks_starts_at_id", "starts_at", "id"),
        # The period's tasks for statistics, read from the index alone.
        Index("ix_tasks_starts_at_figures", "starts_at",
              postgresql_include=["status", "organization_id", "slots", "filled_slots"]),
        Index("ix_tasks_lat_lng", "lat", "lng"),
        # Open tasks near a point (the volunteer app's search): a small share of all tasks ever posted.
        Index("ix_tasks_open_lat_lng", "lat", "lng", postgresql_where=text("status = 'OPEN'")),
        Index("ix_tasks_required_skills", "required_skills", postgresql_using="gin"),
        # The target of service_outcomes' foreign key: an outcome holds its task's project, organization and start.
        UniqueConstraint("id", "project_id", "organization_id", "starts_at"),
    )


class Signup(Base):
    __tablename__ = "signups"
    id: Mapped[uuid.UUID] = uuid_pk()
    task_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("tasks.id", ondelete="CASCADE"))
    volunteer_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("volunteers.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[SignupStatus] = mapped_column(str_enum(SignupStatus, "signup_status"))
    match_score: Mapped[Decimal | None] = mapped_column(Numeric(8, 3))
    # The matcher's breakdown of match_score and the reason for its decision (youthlink.domain.matching.scores).
    match_explanation: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    added_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("accounts.id"))
    applied_at: Mapped[datetime] = created_at()
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checked_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checked_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(String(256))
    __table_args__ = (
        # One sign-up in play per volunteer and task; cancelled / rejected ones stay as history.
        Index(
            "uq_signups_active_per_task", "task_id", "volunteer_id",
            unique=True, postgresql_where=text(f"status IN ({_active_list})"),
        ),
        Index("ix_signups_task_id_applied_at", "task_id", "applied_at", "id"),
        # Matching reads the slot holders of a few tasks (time clashes) and a volunteer's no-shows.
        Index("ix_signups_task_holding", "task_id", postgresql_where=text(f"status IN ({_holding_list})")),
        Index("ix_signups_no_show", "volunteer_id", postgresql_where=text("status = 'NO_SHOW'")),
        CheckConstraint(
            "checked_out_at IS NULL OR (checked_in_at IS NOT NULL AND checked_out_at >= checked_in_at)",
            name="checkout_after_checkin",
        ),
    )


class TaskInvitation(Base):
    """An organization invites an eligible volunteer to apply (from the matcher's recommendations)."""

    __tablename__ = "task_invitations"
    id: Mapped[uuid.UUID] = uuid_pk()
    task_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("tasks.id", ondelete="CASCADE"))
    volunteer_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("volunteers.id", ondelete="CASCADE"), index=True
    )
    invited_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = created_at()
    __table_args__ = (UniqueConstraint("task_id", "volunteer_id"),)


class MatchingRun(Base):
    """One matching batch that decided something: its size, objective, proven bound and timings."""

    __tablename__ = "matching_runs"
    id: Mapped[uuid.UUID] = uuid_pk()
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    tasks: Mapped[int] = mapped_column(Integer)
    applications: Mapped[int] = mapped_column(Integer)
    confirmed: Mapped[int] = mapped_column(Integer)
    waitlisted: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(32))
    # True when the decision is proven optimal (lexicographically: slots filled, then total score).
    exact: Mapped[bool] = mapped_column(Boolean)
    filled: Mapped[int] = mapped_column(Integer)
    score: Mapped[int] = mapped_column(BigInteger)  # in thousandths of a point
    bound_filled: Mapped[int] = mapped_column(Integer)
    bound_score: Mapped[int] = mapped_column(BigInteger)
    weights: Mapped[dict[str, Any]] = mapped_column(JSONB)
    timings: Mapped[dict[str, Any]] = mapped_column(JSONB)
