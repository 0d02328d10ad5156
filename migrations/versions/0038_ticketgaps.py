"""ticket_assignments.end_reason: a part closed with its ticket, and why

Revision ID: 0038
Revises: 0037

A ticket closed while a co-handling agency's or a delegation's part is still open closes
that part with it (status ``closed``); ``end_reason`` keeps the ticket's closing note, so
the part's agency reads why its part ended (tickets.handling.rounds.close_parts).
Existing rows keep NULL: no part was closed that way before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0038"
down_revision: str | None = "0037"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ticket_assignments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("end_reason", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket_assignments", schema=None) as batch_op:
        batch_op.drop_column("end_reason")
