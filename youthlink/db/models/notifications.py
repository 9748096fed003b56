"""In-app notifications: one row per message to an account or a volunteer. Channels (email, webhooks)
are added on top later; the payload holds ids and figures, never personal data."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String
from sqlalchemy.dialects.postgresql import JSONB, UUID
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
