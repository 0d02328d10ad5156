"""congestion alarms escalated: a reason announced while the alarm is up

Revision ID: 0010
Revises: 0009

``state`` takes "escalated" (9 characters: the column grows to 16) and each
row says which reasons it announces first (``added``).  The table stays
append-only: no row is changed on the way up.  On PostgreSQL the column is
widened in place; SQLite does not enforce a VARCHAR's length, and rebuilding
the table there would drop its append-only triggers, so its declared length
is left as it was.

On the way down an escalated row becomes "raised": it carries every reason
of the alarm in force, which is what 0009's code reads from a queue's last
row after a restart.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ESCALATED_AS_RAISED = "CASE WHEN state = 'escalated' THEN 'raised' ELSE state END"


def upgrade() -> None:
    op.add_column(
        "congestion_events",
        sa.Column("added", sa.String(length=120), server_default="", nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "congestion_events",
            "state",
            type_=sa.String(length=16),
            existing_type=sa.String(length=8),
            existing_nullable=False,
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # a table rewrite, not an UPDATE: the append-only trigger does not fire
        op.alter_column(
            "congestion_events",
            "state",
            type_=sa.String(length=8),
            existing_type=sa.String(length=16),
            existing_nullable=False,
            postgresql_using=_ESCALATED_AS_RAISED,
        )
    else:
        # the only change the append-only table ever allows, with its trigger set aside
        op.execute("DROP TRIGGER congestion_events_no_update")
        op.execute(f"UPDATE congestion_events SET state = {_ESCALATED_AS_RAISED}")
        op.execute(
            "CREATE TRIGGER congestion_events_no_update BEFORE UPDATE "
            "ON congestion_events BEGIN SELECT RAISE(ABORT, 'congestion alarms are "
            "append-only'); END"
        )
    op.drop_column("congestion_events", "added")
