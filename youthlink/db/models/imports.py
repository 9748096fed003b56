"""Spreadsheet uploads: what each importer shares (who uploaded what, the counts, the per-row error report)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from youthlink.db.base import Base, created_at, uuid_pk


class ImportBatchColumns:
    """One upload: the organization it is for, the counts and the row-by-row error report (JSON)."""

    id: Mapped[uuid.UUID] = uuid_pk()
    filename: Mapped[str] = mapped_column(String(256))
    rows_total: Mapped[int] = mapped_column(Integer)
    rows_imported: Mapped[int] = mapped_column(Integer)
    rows_duplicate: Mapped[int] = mapped_column(Integer)
    rows_failed: Mapped[int] = mapped_column(Integer)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    created_at: Mapped[datetime] = created_at()

    @declared_attr
    def organization_id(cls) -> Mapped[uuid.UUID]:
        return mapped_column(UUID(as_uuid=True), ForeignKey("organizations.id", ondelete="RESTRICT"), index=True)

    @declared_attr
    def uploaded_by(cls) -> Mapped[uuid.UUID]:
        return mapped_column(UUID(as_uuid=True), ForeignKey("accounts.id"))


class VolunteerImport(ImportBatchColumns, Base):
    """One upload of volunteers and team memberships. rows_imported: new volunteers or memberships;
    rows_duplicate: rows that changed nothing (a re-import)."""

    __tablename__ = "volunteer_imports"
