"""outbound calls: a call an agent places to a citizen from a ticket

Revision ID: 0023
Revises: 0022

An agent may call the citizen from the ticket page ("call the citizen"): their
phone rings first, then the citizen is dialled over the trunk, recorded like
any call.  Such a call gets its own record in ``calls``: ``direction`` tells
it from the calls citizens make (every existing row is ``inbound``), and
``ticket_id`` names the ticket it was placed from (the calls domain sits below
the tickets one, so the column carries no foreign key: tickets are never
deleted).  One agent has at most one outbound call open at a time: a partial
unique index holds that, whatever the number of panel processes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("direction = 'outbound' AND ended_at IS NULL")


def upgrade() -> None:
    op.add_column(
        "calls",
        sa.Column("direction", sa.String(length=8), nullable=False, server_default="inbound"),
    )
    op.add_column("calls", sa.Column("ticket_id", sa.Integer(), nullable=True))
    op.create_index("ix_calls_ticket_id", "calls", ["ticket_id"])
    op.create_index(
        "ix_calls_outbound_open",
        "calls",
        ["agent_extension"],
        unique=True,
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
    )


def downgrade() -> None:
    # the calls table is referenced by many: its columns go in place (SQLite 3.35+
    # drops a column without copying the table, which its references would forbid)
    op.drop_index("ix_calls_outbound_open", table_name="calls")
    op.drop_index("ix_calls_ticket_id", table_name="calls")
    op.drop_column("calls", "ticket_id")
    op.drop_column("calls", "direction")
