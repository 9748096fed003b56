"""The service-hours ledger: records, corrections, approvals settings, star levels, certificates, imports.

A record carries what the 2020 rules on volunteer-service records ask for (activity, date, place, content,
hours, organizing unit, person in charge). Its natural key is its sign-up (check-in, paper) or its import
key (offline records): the keys, not luck, make crediting exactly-once. A decided record never changes
(a trigger in migration 0003 refuses it); a correction is a separate, reasoned adjustment.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Numeric,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from youthlink.db.base import Base, created_at, uuid_pk
from youthlink.db.models._types import str_enum
from youthlink.db.models.enums import RecordSource, RecordStatus
from youthlink.db.models.imports import ImportBatchColumns


class CorrectionStatus(enum.StrEnum):
    OPEN = "OPEN"
    ACCEPTED = "ACCEPTED"
    DECLINED = "DECLINED"


class CertificateStatus(enum.StrEnum):
    REQUESTED = "REQUESTED"
    ISSUED = "ISSUED"
    DECLINED = "DECLINED"
    REVOKED = "REVOKED"


class ServiceRecord(Base):
    __tablename__ = "service_records"
    id: Mapped[uuid.UUID] = uuid_pk()
    volunteer_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("volunteers.id", ondelete="RESTRICT"), index=True
    )
    # The organizing unit (组织单位): the task's organization, or the importing one for offline records.
    organization_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    # Check-in and paper records belong to a task and a sign-up; imported offline records to neither.
    task_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tasks.id", ondelete="RESTRICT"), index=True
    )
    # The natural key: a sign-up earns at most one record, however often the crediting job runs.
    signup_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("signups.id", ondelete="RESTRICT"), unique=True
    )
    # The natural key of an imported row (a hash of organization, volunteer, date, activity and place).
    import_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    import_batch_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("hours_imports.id", ondelete="RESTRICT"), index=True
    )
    activity_name: Mapped[str] = mapped_column(String(128))
    service_date: Mapped[date] = mapped_column(Date)
    place: Mapped[str] = mapped_column(String(256))
    content: Mapped[str] = mapped_column(Text, default="")
    person_in_charge: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # False for offline records that give a date and hours but no clock times (started_at is then the
    # day's start in the city's zone): overlap is checked on the day's total for them.
    times_recorded: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    hours: Mapped[Decimal] = mapped_column(Numeric(6, 1))
    status: Mapped[RecordStatus] = mapped_column(str_enum(RecordStatus, "record_status"))
    source: Mapped[RecordSource] = mapped_column(str_enum(RecordSource, "record_source"))
    note: Mapped[str] = mapped_column(Text, default="")
    # Recording is due within 10 working days after the activity (志愿服务记录与证明出具办法).
    due_on: Mapped[date] = mapped_column(Date)
    late: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # Set when another record of the same volunteer covers the same time: it cannot be approved until one
    # of the two is rejected (the same person credited twice for one time by two teams).
    overlaps_record_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("service_records.id", ondelete="RESTRICT")
    )
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("accounts.id"))
    approved_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("accounts.id"))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    auto_approved: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    rejected_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("accounts.id"))
    rejected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rejected_reason: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = created_at()
    __table_args__ = (
        CheckConstraint("hours > 0 AND hours <= 24", name="hours_range"),
        CheckConstraint("ended_at > started_at", name="ends_after_start"),
        CheckConstraint(
            "(status = 'APPROVED') = (approved_at IS NOT NULL)"
            " AND (approved_at IS NULL OR approved_by IS NOT NULL OR auto_approved)",
            name="approval_recorded",
        ),
        CheckConstraint(
            "(status = 'REJECTED') = (rejected_at IS NOT NULL AND rejected_reason IS NOT NULL)",
            name="rejection_recorded",
        ),
        CheckConstraint(
            "(source = 'IMPORT') = (signup_id IS NULL) AND (signup_id IS NULL) = (task_id IS NULL)"
            " AND (source = 'IMPORT') = (import_key IS NOT NULL)",
            name="source_keys",
        ),
        CheckConstraint("overlaps_record_id IS NULL OR overlaps_record_id <> id", name="not_own_overlap"),
        Index("ix_service_records_status_approved_at", "status", "approved_at"),
        Index("ix_service_records_organization_review", "organization_id", "status", "due_on", "id"),
        Index("ix_service_records_volunteer_day", "volunteer_id", "service_date"),
        Index("ix_service_records_organization_started", "organization_id", "started_at"),
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


class CorrectionRequest(Base):
    """A volunteer's request to correct an approved record: accepted as an adjustment, or declined."""

    __tablename__ = "correction_requests"
    id: Mapped[uuid.UUID] = uuid_pk()
    record_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("service_records.id", ondelete="RESTRICT"), index=True
    )
    volunteer_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("volunteers.id", ondelete="RESTRICT"), index=True
    )
    hours: Mapped[Decimal] = mapped_column(Numeric(6, 1))
    what: Mapped[str] = mapped_column(Text)
    why: Mapped[str] = mapped_column(Text)
    status: Mapped[CorrectionStatus] = mapped_column(str_enum(CorrectionStatus, "correction_status"))
    requested_by: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("accounts.id"))
    decided_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("accounts.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    adjustment_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("adjustments.id", ondelete="RESTRICT"), unique=True
    )
    created_at: Mapped[datetime] = created_at()
    __table_args__ = (
        CheckConstraint("hours <> 0", name="hours_nonzero"),
        CheckConstraint(
            "(status = 'OPEN') = (decided_at IS NULL)"
            " AND (status = 'ACCEPTED') = (adjustment_id IS NOT NULL)"
            " AND (status = 'OPEN' OR length(btrim(coalesce(decision_reason, ''))) > 0)",
            name="decision_recorded",
        ),
        # One open request per record at a time.
        Index("uq_correction_requests_open", "record_id", unique=True, postgresql_where=text("status = 'OPEN'")),
    )


class OrganizationHoursSettings(Base):
    """Per organization: approve PENDING records automatically after N days (off when absent or NULL)."""

    __tablename__ = "organization_hours_settings"
    organization_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    auto_approve_after_days: Mapped[int | None] = mapped_column(SmallInteger)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("accounts.id"))
    updated_at: Mapped[datetime] = created_at()
    __table_args__ = (
        CheckConstraint(
            "auto_approve_after_days IS NULL OR auto_approve_after_days BETWEEN 1 AND 60", name="auto_days_range"
        ),
    )


class StarLevelAward(Base):
    """A star level the volunteer reached, once, in order (1 before 2 ...)."""

    __tablename__ = "star_level_awards"
    volunteer_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("volunteers.id", ondelete="CASCADE"), primary_key=True
    )
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    total_hours: Mapped[Decimal] = mapped_column(Numeric(10, 1))
    reached_at: Mapped[datetime] = created_at()
    __table_args__ = (CheckConstraint("level BETWEEN 1 AND 5", name="level_range"),)


class Certificate(Base):
    """A certificate of service (志愿服务证明): requested by a volunteer, issued (free) by an organization.

    At issue the facts are frozen into the row (hours, period, content, masked identity) so the PDF and the
    public verification page always state the same thing, whatever changes later.
    """

    __tablename__ = "certificates"
    id: Mapped[uuid.UUID] = uuid_pk()
    serial: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    volunteer_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("volunteers.id", ondelete="RESTRICT"), index=True
    )
    organization_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    status: Mapped[CertificateStatus] = mapped_column(str_enum(CertificateStatus, "certificate_status"))
    period_from: Mapped[date | None] = mapped_column(Date)
    period_to: Mapped[date | None] = mapped_column(Date)
    requested_by: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("accounts.id"))
    number: Mapped[str | None] = mapped_column(String(32), unique=True)
    verification_code: Mapped[str | None] = mapped_column(String(32), unique=True)
    hours: Mapped[Decimal | None] = mapped_column(Numeric(10, 1))
    facts: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    issued_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("accounts.id"))
    issued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_reason: Mapped[str | None] = mapped_column(Text)
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("accounts.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()
    __table_args__ = (
        CheckConstraint(
            "(status IN ('ISSUED', 'REVOKED')) = (issued_at IS NOT NULL AND number IS NOT NULL"
            " AND verification_code IS NOT NULL AND hours IS NOT NULL)",
            name="issue_recorded",
        ),
        CheckConstraint("(status = 'REVOKED') = (revoked_at IS NOT NULL)", name="revocation_recorded"),
        CheckConstraint("period_from IS NULL OR period_to IS NULL OR period_to >= period_from", name="period_order"),
    )


class HoursImport(ImportBatchColumns, Base):
    """One upload of offline hours: the counts and the row-by-row error report."""

    __tablename__ = "hours_imports"
