"""service outcomes: a project's outcome kind (litter, river patrol); one outcome report per task, with its lines
(litter by category, problems by category)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("LITTER", "RIVER_PATROL")
LITTER = "'PLASTIC', 'GLASS', 'METAL', 'PAPER', 'FISHING_GEAR', 'OTHER'"
PROBLEMS = "'POLLUTION', 'ILLEGAL_FISHING', 'GARBAGE', 'DAMAGED_FACILITIES', 'OTHER'"


def _kind(nullable: bool) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("kind" if not nullable else "outcome_kind",
                     sa.Enum(*KINDS, name="outcome_kind", native_enum=False, create_constraint=False, length=24),
                     nullable=nullable)


def upgrade() -> None:
    op.add_column("projects", _kind(nullable=True))
    op.create_check_constraint(op.f("ck_projects_outcome_kind"), "projects",
                               "outcome_kind IN ('LITTER', 'RIVER_PATROL')")
    op.create_unique_constraint(op.f("uq_projects_id_outcome_kind"), "projects", ["id", "outcome_kind"])
    op.create_unique_constraint(op.f("uq_tasks_id_project_id_organization_id_starts_at"), "tasks",
                                ["id", "project_id", "organization_id", "starts_at"])
    op.create_table(
        "service_outcomes",
        sa.Column("task_id", sa.UUID(), nullable=False),
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        _kind(nullable=False),
        sa.Column("patrol_km", sa.Numeric(precision=6, scale=2), nullable=True),
        sa.Column("problems_reported", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("recorded_by", sa.UUID(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kind IN ('LITTER', 'RIVER_PATROL')", name=op.f("ck_service_outcomes_outcome_kind")),
        sa.CheckConstraint(
            "(kind = 'LITTER' AND patrol_km IS NULL AND problems_reported IS NULL) OR "
            "(kind = 'RIVER_PATROL' AND patrol_km IS NOT NULL AND patrol_km > 0 AND patrol_km <= 200 "
            "AND problems_reported IS NOT NULL AND problems_reported BETWEEN 0 AND 1000)",
            name=op.f("ck_service_outcomes_figures_of_kind")),
        sa.ForeignKeyConstraint(["task_id", "project_id", "organization_id", "starts_at"],
                                ["tasks.id", "tasks.project_id", "tasks.organization_id", "tasks.starts_at"],
                                ondelete="CASCADE", onupdate="CASCADE", name="fk_service_outcomes_task_tasks"),
        sa.ForeignKeyConstraint(["project_id", "kind"], ["projects.id", "projects.outcome_kind"],
                                name="fk_service_outcomes_project_kind_projects"),
        sa.ForeignKeyConstraint(["recorded_by"], ["accounts.id"], name=op.f("fk_service_outcomes_recorded_by_accounts")),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_service_outcomes")),
        sa.UniqueConstraint("task_id", "kind", name=op.f("uq_service_outcomes_task_id_kind")),
    )
    op.create_index(op.f("ix_service_outcomes_project_id"), "service_outcomes", ["project_id"], unique=False)
    op.create_index("ix_service_outcomes_starts_at", "service_outcomes", ["starts_at"], unique=False)
    op.create_table(
        "service_outcome_lines",
        sa.Column("task_id", sa.UUID(), nullable=False),
        sa.Column("category", sa.String(length=24), nullable=False),
        _kind(nullable=False),
        sa.Column("weight_kg", sa.Numeric(precision=8, scale=2), nullable=True),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.CheckConstraint("kind IN ('LITTER', 'RIVER_PATROL')", name=op.f("ck_service_outcome_lines_outcome_kind")),
        sa.CheckConstraint(
            f"(kind = 'LITTER' AND category IN ({LITTER}) "
            f"AND weight_kg IS NOT NULL AND weight_kg > 0 AND weight_kg <= 10000 "
            f"AND (count IS NULL OR count BETWEEN 1 AND 1000000)) OR "
            f"(kind = 'RIVER_PATROL' AND category IN ({PROBLEMS}) AND weight_kg IS NULL "
            f"AND count IS NOT NULL AND count BETWEEN 1 AND 1000)",
            name=op.f("ck_service_outcome_lines_line_of_kind")),
        sa.ForeignKeyConstraint(["task_id", "kind"], ["service_outcomes.task_id", "service_outcomes.kind"],
                                ondelete="CASCADE", name="fk_service_outcome_lines_task_kind_service_outcomes"),
        sa.PrimaryKeyConstraint("task_id", "category", name=op.f("pk_service_outcome_lines")),
    )


def downgrade() -> None:
    op.drop_table("service_outcome_lines")
    op.drop_index("ix_service_outcomes_starts_at", table_name="service_outcomes")
    op.drop_index(op.f("ix_service_outcomes_project_id"), table_name="service_outcomes")
    op.drop_table("service_outcomes")
    op.drop_constraint(op.f("uq_tasks_id_project_id_organization_id_starts_at"), "tasks", type_="unique")
    op.drop_constraint(op.f("uq_projects_id_outcome_kind"), "projects", type_="unique")
    op.drop_constraint(op.f("ck_projects_outcome_kind"), "projects", type_="check")
    op.drop_column("projects", "outcome_kind")
