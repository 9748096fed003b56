"""Notifications: one row per message to an account or a volunteer (the in-app inbox; the payload holds ids
and figures, never personal data), one delivery row per message and further channel (email, webhook), and
each account's channel preferences."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from youthlink.db.base import Base, created_at, uuid_pk


class Notification(Base):
    __tablename__ = "notifications"
    id: Mapped[uuid.UUID] = uuid_pk()
    recipient_account_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("accounts.id", ondelete="CASCADE")
    )
    recipient_volunteer_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("volunteers.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(48))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # Makes a notification idempotent: a job run twice sends it once (NULL: no such guard).
    dedupe_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    created_at: Mapped[datetime] = created_at()
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        CheckConstraint(
            "(recipient_account_id IS NULL) <> (recipient_volunteer_id IS NULL)", name="one_recipient"
        ),
        Index("ix_notifications_account", "recipient_account_id", "created_at"),
        Index("ix_notifications_volunteer", "recipient_volunteer_id", "created_at"),
    )


DELIVERY_STATES = ("PENDING", "SENDING", "SENT", "FAILED")


class NotificationDelivery(Base):
    """One notification sent over one channel: at most one row per (notification, channel), moved forward only
    by state-guarded updates (PENDING -> SENDING -> SENT, or FAILED when its attempts run out)."""

    __tablename__ = "notification_deliveries"
    id: Mapped[uuid.UUID] = uuid_pk()
    notification_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("notifications.id", ondelete="CASCADE")
    )
    channel: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="PENDING")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Quiet hours: a non-urgent message waits until then.
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = created_at()
    __table_args__ = (
        UniqueConstraint("notification_id", "channel"),
        CheckConstraint("state IN ('PENDING', 'SENDING', 'SENT', 'FAILED')", name="state"),
        Index("ix_notification_deliveries_open", "created_at",
              postgresql_where=text("state IN ('PENDING', 'SENDING')")),
    )


class NotificationPreference(Base):
    """An account's channels besides the in-app inbox (always on), where they go, and muted reminders."""

    __tablename__ = "notification_preferences"
    account_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    channels: Mapped[list[str]] = mapped_column(ARRAY(String(16)), default=list)
    email: Mapped[str | None] = mapped_column(String(254))
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    mute_reminders: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = created_at()
