"""The service-hours ledger: one record per sign-up, corrections as separate adjustments."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Numeric, String, Text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from youthlink.db.base import Base, created_at, uuid_pk
from youthlink.db.models._types import str_enum
from youthlink.db.models.enums import RecordSource, RecordStatus


class ServiceRecord(Base):
    __tablename__ = "service_records"
    id: Mapped[uuid.UUID] = uuid_pk()
    volunteer_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("volunteers.id", ondelete="RESTRICT"), index=True
    )
    task_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tasks.id", ondelete="RESTRICT"), index=True
    )
    # The natural key: a sign-up earns at most one record, however often the crediting job runs.
    signup_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("signups.id", ondelete="RESTRICT"), unique=True
    )
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    hours: Mapped[Decimal] = mapped_column(Numeric(6, 1))
    status: Mapped[RecordStatus] = mapped_column(str_enum(RecordStatus, "record_status"))
    source: Mapped[RecordSource] = mapped_column(str_enum(RecordSource, "record_source"))
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("accounts.id"))
    approved_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("accounts.id"))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rejected_reason: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = created_at()
    __table_args__ = (
        CheckConstraint("hours > 0 AND hours <= 24", name="hours_range"),
        CheckConstraint("ended_at > started_at", name="ends_after_start"),
        CheckConstraint(
            "(status = 'APPROVED') = (approved_at IS NOT NULL AND approved_by IS NOT NULL)",
            name="approval_recorded",
        ),
        Index("ix_service_records_status_approved_at", "status", "approved_at"),
    )


class Adjustment(Base):
    __tablename__ = "adjustments"
    id: Mapped[uuid.UUID] = uuid_pk()
    record_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("service_records.id", ondelete="RESTRICT"), index=True
    )
    volunteer_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("volunteers.id", ondelete="RESTRICT"), index=True
    )
    hours: Mapped[Decimal] = mapped_column(Numeric(6, 1))
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = created_at()
    __table_args__ = (
        CheckConstraint("hours <> 0", name="hours_nonzero"),
        CheckConstraint("length(btrim(reason)) > 0", name="reason_given"),
    )
