"""result calls: the citizen is called back with the result of their report

Revision ID: 0022
Revises: 0021

``result_calls`` holds one call per result of a level-2 or level-3 report (made in
the transaction that records the agency's answer; ``round`` is the ticket's
``reopens`` then, so a second answer after a reopening gets its own), with where it
stands, its tries and when the next is due, and the answered try's call record
(which holds the recording).  Each try is also a line of the ticket's history.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "result_calls",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("hotline_number", sa.String(length=20), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_result", sa.String(length=16), nullable=True),
        sa.Column("uniqueid", sa.String(length=64), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_result_calls_ticket_id_tickets")
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_result_calls_call_id_calls")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_result_calls")),
        sa.UniqueConstraint("ticket_id", "round", name=op.f("uq_result_calls_ticket_id")),
        sa.UniqueConstraint("uniqueid", name=op.f("uq_result_calls_uniqueid")),
    )
    op.create_index("ix_result_calls_ticket_id", "result_calls", ["ticket_id"])
    op.create_index("ix_result_calls_number", "result_calls", ["number"])
    op.create_index("ix_result_calls_due", "result_calls", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_result_calls_due", table_name="result_calls")
    op.drop_index("ix_result_calls_number", table_name="result_calls")
    op.drop_index("ix_result_calls_ticket_id", table_name="result_calls")
    op.drop_table("result_calls")
