"""call_transfers: the chain of a live call's transfers

Revision ID: 0030
Revises: 0029

Each transfer of a call (blind or attended) to a queue, a supervisor's phone,
an agency's number or an emergency number is a row: who asked, from which
phone, to what, when, and how it went.  Rows are never deleted.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_transfers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.Integer, sa.ForeignKey("calls.id"), nullable=False),
        sa.Column("call_uniqueid", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target_kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("target_label", sa.String(200), nullable=False),
        sa.Column("number", sa.String(32), nullable=True),
        sa.Column("from_extension", sa.String(16), nullable=True),
        sa.Column("user_id", sa.Integer, nullable=True),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("draft", sa.Text, nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.String(16), nullable=True),
        sa.Column("detail", sa.String(200), nullable=True),
    )
    op.create_index("ix_call_transfers_call_id", "call_transfers", ["call_id"])
    op.create_index("ix_call_transfers_call_uniqueid", "call_transfers", ["call_uniqueid"])
    op.create_index("ix_call_transfers_requested_at", "call_transfers", ["requested_at"])


def downgrade() -> None:
    op.drop_table("call_transfers")
