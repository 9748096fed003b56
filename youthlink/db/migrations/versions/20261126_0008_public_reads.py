"""public reads: a partial index for open tasks near a point, and notifications when public data changes

OpenTasks (status OPEN, near a point, with skills) read the whole (lat, lng) box of every task ever posted,
closed ones included: about 5,600 rows for 285 open ones at city scale (8 ms). Open tasks are a small,
bounded share of the table, so their coordinates get an index of their own (0.7 ms, 0.3 ms for the count).
The search names the status as a literal, so the planner can use it in prepared (generic) plans too.

The API keeps public answers (task listings, towns) in memory for a few seconds
(youthlink.graphql.public_cache). Every committed change to the tables they read notifies the channel
`youthlink_public_data`, whoever makes it, and each API process empties its cache when it hears one.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PUBLIC_TABLES = ("tasks", "towns", "organizations", "projects", "teams")  # public_cache.WATCHED_TABLES


def upgrade() -> None:
    op.create_index("ix_tasks_open_lat_lng", "tasks", ["lat", "lng"], unique=False,
                    postgresql_where=sa.text("status = 'OPEN'"))
    op.execute("""
        CREATE FUNCTION youthlink_public_data_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('youthlink_public_data', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$
    """)
    for table in PUBLIC_TABLES:
        op.execute(f"""
            CREATE TRIGGER {table}_public_data_changed
            AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION youthlink_public_data_changed()
        """)


def downgrade() -> None:
    for table in PUBLIC_TABLES:
        op.execute(f"DROP TRIGGER {table}_public_data_changed ON {table}")
    op.execute("DROP FUNCTION youthlink_public_data_changed()")
    op.drop_index("ix_tasks_open_lat_lng", table_name="tasks", postgresql_where=sa.text("status = 'OPEN'"))
