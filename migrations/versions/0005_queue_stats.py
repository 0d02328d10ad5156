"""queue events and live statistics

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "queue_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("uniqueid", sa.String(length=64), nullable=True),
        sa.Column("agent", sa.String(length=16), nullable=True),
        sa.Column("event", sa.String(length=24), nullable=False),
        sa.Column("wait_seconds", sa.Integer(), nullable=True),
        sa.Column("talk_seconds", sa.Integer(), nullable=True),
        sa.Column("data", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_events")),
        sa.UniqueConstraint("key", name=op.f("uq_queue_events_key")),
    )
    with op.batch_alter_table("queue_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_queue_events_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_queue_events_queue"), ["queue"], unique=False)
        batch_op.create_index(batch_op.f("ix_queue_events_uniqueid"), ["uniqueid"], unique=False)
        batch_op.create_index(batch_op.f("ix_queue_events_agent"), ["agent"], unique=False)
        batch_op.create_index("ix_queue_events_queue_at", ["queue", "at"], unique=False)
        batch_op.create_index("ix_queue_events_agent_at", ["agent", "at"], unique=False)

    # The event log is append-only: the database itself refuses to change or
    # delete a line (the figures are computed from it and must be reproducible).
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION queue_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'queue events are append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER queue_events_append_only BEFORE UPDATE OR DELETE ON queue_events "
            "FOR EACH ROW EXECUTE FUNCTION queue_events_append_only()"
        )
    else:
        for what in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER queue_events_no_{what.lower()} BEFORE {what} ON queue_events "
                "BEGIN SELECT RAISE(ABORT, 'queue events are append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS queue_events_append_only ON queue_events")
        op.execute("DROP FUNCTION IF EXISTS queue_events_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS queue_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS queue_events_no_delete")
    with op.batch_alter_table("queue_events", schema=None) as batch_op:
        batch_op.drop_index("ix_queue_events_agent_at")
        batch_op.drop_index("ix_queue_events_queue_at")
        batch_op.drop_index(batch_op.f("ix_queue_events_agent"))
        batch_op.drop_index(batch_op.f("ix_queue_events_uniqueid"))
        batch_op.drop_index(batch_op.f("ix_queue_events_queue"))
        batch_op.drop_index(batch_op.f("ix_queue_events_at"))
    op.drop_table("queue_events")
