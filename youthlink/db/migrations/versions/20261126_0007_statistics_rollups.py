"""statistics rollups: figures per calendar period (month, quarter, year) and key (city, organization, town,
project, team); indexes for the period's tasks and volunteers

Revision ID: 0007
Revises: 0004
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stats_periods",
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("key", sa.UUID(), nullable=False),
        sa.Column("hours", sa.Numeric(precision=14, scale=1), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("attended", sa.Integer(), nullable=False),
        sa.Column("no_shows", sa.Integer(), nullable=False),
        sa.Column("tasks", sa.Integer(), nullable=False),
        sa.Column("volunteers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("period", "period_start", "dimension", "key", name=op.f("pk_stats_periods")),
    )
    op.create_index("ix_service_records_organization_started", "service_records", ["organization_id", "started_at"],
                    unique=False)
    op.create_index("ix_tasks_starts_at_figures", "tasks", ["starts_at"], unique=False,
                    postgresql_include=["status", "organization_id", "slots", "filled_slots"])
    op.create_index("ix_volunteers_created_at_total_hours", "volunteers", ["created_at", "total_hours"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_volunteers_created_at_total_hours", table_name="volunteers")
    op.drop_index("ix_tasks_starts_at_figures", table_name="tasks")
    op.drop_index("ix_service_records_organization_started", table_name="service_records")
    op.drop_table("stats_periods")
