"""accounts, roles, personal data and the management graph: spreadsheet imports of volunteers

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "volunteer_imports",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("filename", sa.String(length=256), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("rows_imported", sa.Integer(), nullable=False),
        sa.Column("rows_duplicate", sa.Integer(), nullable=False),
        sa.Column("rows_failed", sa.Integer(), nullable=False),
        sa.Column("errors", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("uploaded_by", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"],
                                name=op.f("fk_volunteer_imports_organization_id_organizations"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["uploaded_by"], ["accounts.id"], name=op.f("fk_volunteer_imports_uploaded_by_accounts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volunteer_imports")),
    )
    op.create_index(op.f("ix_volunteer_imports_organization_id"), "volunteer_imports", ["organization_id"],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_volunteer_imports_organization_id"), table_name="volunteer_imports")
    op.drop_table("volunteer_imports")
