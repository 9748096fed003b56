"""matching: a batch's decisions per task round (matching_decisions) instead of a write to every application

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("matching_round", sa.Integer(), server_default="0", nullable=False))
    op.add_column("tasks", sa.Column("decided_round", sa.Integer(), server_default="0", nullable=False))
    op.create_check_constraint("decided_rounds_closed", "tasks", "decided_round BETWEEN 0 AND matching_round")
    op.add_column("signups", sa.Column("matching_round", sa.Integer(), server_default="0", nullable=False))
    op.create_check_constraint("matching_round_not_negative", "signups", "matching_round >= 0")
    op.create_index("ix_signups_applied_round", "signups", ["task_id", "matching_round"],
                    postgresql_where=sa.text("status = 'APPLIED'"))
    op.create_table(
        "matching_decisions",
        sa.Column("task_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("run_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applications", sa.Integer(), nullable=False),
        sa.Column("rejected", postgresql.ARRAY(postgresql.UUID(as_uuid=True)), nullable=False),
        sa.Column("entries", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("round >= 0", name=op.f("ck_matching_decisions_round_not_negative")),
        sa.CheckConstraint("applications > 0", name=op.f("ck_matching_decisions_applications_positive")),
        sa.CheckConstraint("cardinality(rejected) <= applications",
                           name=op.f("ck_matching_decisions_rejected_among_applications")),
        sa.CheckConstraint("octet_length(entries) = 51 * applications",
                           name=op.f("ck_matching_decisions_entries_length")),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_matching_decisions_task_id_tasks"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["matching_runs.id"],
                                name=op.f("fk_matching_decisions_run_id_matching_runs"), deferrable=True,
                                initially="DEFERRED"),
        sa.PrimaryKeyConstraint("task_id", "round", name=op.f("pk_matching_decisions")),
    )
    op.create_index(op.f("ix_matching_decisions_run_id"), "matching_decisions", ["run_id"])
    # Stored out of line as they are, without trying to compress: at city scale (173 MB of entries) pglz took
    # 5.9 s to store them and EXTERNAL 0.9 s.
    op.execute("ALTER TABLE matching_decisions ALTER COLUMN entries SET STORAGE EXTERNAL")


def downgrade() -> None:
    # Write each decided application's decision into its row, as the batch did before, then drop the rounds.
    op.execute("""
        UPDATE signups s SET status = CASE WHEN s.id = ANY(d.rejected) THEN 'REJECTED' ELSE 'WAITLISTED' END,
                             decided_at = coalesce(s.decided_at, d.decided_at)
        FROM matching_decisions d
        WHERE s.status = 'APPLIED' AND d.task_id = s.task_id AND d.round = s.matching_round
    """)
    op.drop_index(op.f("ix_matching_decisions_run_id"), table_name="matching_decisions")
    op.drop_table("matching_decisions")
    op.drop_index("ix_signups_applied_round", table_name="signups")
    op.drop_constraint(op.f("ck_signups_matching_round_not_negative"), "signups", type_="check")
    op.drop_column("signups", "matching_round")
    op.drop_constraint(op.f("ck_tasks_decided_rounds_closed"), "tasks", type_="check")
    op.drop_column("tasks", "decided_round")
    op.drop_column("tasks", "matching_round")
