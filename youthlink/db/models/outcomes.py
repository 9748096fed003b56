"""Service outcomes (服务成效): what a task of a brand project achieved, recorded by the organization running it.

One report per task (`service_outcomes`), of the kind its project declares (`projects.outcome_kind`), with its
lines (`service_outcome_lines`): litter collected by category (weight, optional item count) for a beach
clean-up; problems reported by category (count) for a river patrol, whose report also holds the kilometres
patrolled and the number of problems reported.

The database holds the invariants, whatever the code does:
- an outcome belongs to a task of a project ((task, project, organization, start) references the task's row,
  updated in cascade) and is of that project's kind ((project, kind) references projects (id, outcome_kind));
- a line belongs to an outcome of its kind ((task, kind) references service_outcomes (task_id, kind)), one per
  task and category, with the category, weight and count its kind allows (CHECKs);
- a river patrol has a positive, sane length and problem count; a litter report has neither.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from youthlink.db.base import Base
from youthlink.db.models._types import str_enum
from youthlink.db.models.enums import LitterCategory, OutcomeKind, ProblemCategory

# Sane maxima, checked by the commands and backed by the CHECKs below.
MAX_KG = Decimal(10_000)  # litter of one category on one task
MAX_ITEMS = 1_000_000
MAX_KM = Decimal(200)  # one patrol
MAX_PROBLEMS = 1_000

_litter = ", ".join(f"'{c.value}'" for c in LitterCategory)
_problems = ", ".join(f"'{c.value}'" for c in ProblemCategory)


class ServiceOutcome(Base):
    __tablename__ = "service_outcomes"
    task_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    project_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    # The task's organization and start, copied for the totals (a period's reports by index, without the tasks);
    # part of the foreign key to the task, so they cannot drift (a rescheduled task's start cascades here).
    organization_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[OutcomeKind] = mapped_column(str_enum(OutcomeKind, "outcome_kind"))
    patrol_km: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    problems_reported: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), ForeignKey("accounts.id"))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (
        ForeignKeyConstraint(["task_id", "project_id", "organization_id", "starts_at"],
                             ["tasks.id", "tasks.project_id", "tasks.organization_id", "tasks.starts_at"],
                             ondelete="CASCADE", onupdate="CASCADE", name="fk_service_outcomes_task_tasks"),
        ForeignKeyConstraint(["project_id", "kind"], ["projects.id", "projects.outcome_kind"],
                             name="fk_service_outcomes_project_kind_projects"),
        UniqueConstraint("task_id", "kind"),  # the target of the lines' (task, kind) foreign key
        Index("ix_service_outcomes_starts_at", "starts_at"),
        CheckConstraint(
            f"(kind = 'LITTER' AND patrol_km IS NULL AND problems_reported IS NULL) OR "
            f"(kind = 'RIVER_PATROL' AND patrol_km IS NOT NULL AND patrol_km > 0 AND patrol_km <= {MAX_KM} "
            f"AND problems_reported IS NOT NULL AND problems_reported BETWEEN 0 AND {MAX_PROBLEMS})",
            name="figures_of_kind",
        ),
    )


class ServiceOutcomeLine(Base):
    """Litter of one category (kg, optional items), or problems of one category (count), on one task."""

    __tablename__ = "service_outcome_lines"
    task_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    category: Mapped[str] = mapped_column(String(24), primary_key=True)
    kind: Mapped[OutcomeKind] = mapped_column(str_enum(OutcomeKind, "outcome_kind"))
    weight_kg: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))
    count: Mapped[int | None] = mapped_column(Integer)
    __table_args__ = (
        ForeignKeyConstraint(["task_id", "kind"], ["service_outcomes.task_id", "service_outcomes.kind"],
                             ondelete="CASCADE", name="fk_service_outcome_lines_task_kind_service_outcomes"),
        CheckConstraint(
            f"(kind = 'LITTER' AND category IN ({_litter}) "
            f"AND weight_kg IS NOT NULL AND weight_kg > 0 AND weight_kg <= {MAX_KG} "
            f"AND (count IS NULL OR count BETWEEN 1 AND {MAX_ITEMS})) OR "
            f"(kind = 'RIVER_PATROL' AND category IN ({_problems}) AND weight_kg IS NULL "
            f"AND count IS NOT NULL AND count BETWEEN 1 AND {MAX_PROBLEMS})",
            name="line_of_kind",
        ),
    )
