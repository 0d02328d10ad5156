"""congestion alarms raised and cleared (append-only)

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "congestion_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("reasons", sa.String(length=120), nullable=False),
        sa.Column("waiting", sa.Integer(), nullable=False),
        sa.Column("longest_wait_seconds", sa.Integer(), nullable=False),
        sa.Column("all_busy_growing_seconds", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_congestion_events")),
    )
    with op.batch_alter_table("congestion_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_congestion_events_at"), ["at"], unique=False)
        batch_op.create_index("ix_congestion_events_queue_at", ["queue", "at"], unique=False)

    # The alarm log is append-only: the database refuses to change or delete a line.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION congestion_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'congestion alarms are append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER congestion_events_append_only BEFORE UPDATE OR DELETE "
            "ON congestion_events FOR EACH ROW EXECUTE FUNCTION congestion_events_append_only()"
        )
    else:
        for what in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER congestion_events_no_{what.lower()} BEFORE {what} "
                "ON congestion_events BEGIN SELECT RAISE(ABORT, 'congestion alarms are "
                "append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS congestion_events_append_only ON congestion_events")
        op.execute("DROP FUNCTION IF EXISTS congestion_events_append_only()")
    with op.batch_alter_table("congestion_events", schema=None) as batch_op:
        batch_op.drop_index("ix_congestion_events_queue_at")
        batch_op.drop_index(batch_op.f("ix_congestion_events_at"))
    op.drop_table("congestion_events")
