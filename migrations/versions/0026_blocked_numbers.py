"""blocked numbers: the supervisors' list of numbers whose calls get only key 0

Revision ID: 0026
Revises: 0025

A number with repeated prank or abusive calls is put on the list by a
supervisor, with a reason and an end; its calls hear a short message and are
offered only the emergency option.  Rows are never deleted (a lift sets
``removed_at``/``removed_by``): they are the list's audit.  ``calls.block_id``
names the block a caller's call met, so blocked calls are counted.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "blocked_numbers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_by", sa.String(100), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_blocked_numbers_number", "blocked_numbers", ["number"])
    op.create_index("ix_blocked_numbers_created_at", "blocked_numbers", ["created_at"])
    op.create_index("ix_blocked_numbers_expires_at", "blocked_numbers", ["expires_at"])
    # the list's audit: the database itself refuses to delete a block (a lift is an update)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION blocked_numbers_kept() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'blocked numbers are never deleted'; END $$"
        )
        op.execute(
            "CREATE TRIGGER blocked_numbers_kept BEFORE DELETE ON blocked_numbers "
            "FOR EACH ROW EXECUTE FUNCTION blocked_numbers_kept()"
        )
    else:
        op.execute(
            "CREATE TRIGGER blocked_numbers_kept BEFORE DELETE ON blocked_numbers "
            "BEGIN SELECT RAISE(ABORT, 'blocked numbers are never deleted'); END"
        )
    op.add_column("calls", sa.Column("block_id", sa.Integer, nullable=True))
    op.create_index("ix_calls_block_id", "calls", ["block_id"])


def downgrade() -> None:
    # in place, not a batch copy: other tables reference calls (as 0024 does)
    op.drop_index("ix_calls_block_id", table_name="calls")
    op.drop_column("calls", "block_id")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS blocked_numbers_kept ON blocked_numbers")
        op.execute("DROP FUNCTION IF EXISTS blocked_numbers_kept()")
    else:
        op.execute("DROP TRIGGER IF EXISTS blocked_numbers_kept")
    op.drop_table("blocked_numbers")
