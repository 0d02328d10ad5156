"""reopening and satisfaction ratings

Revision ID: 0018
Revises: 0017

A citizen who is not satisfied with how a report was handled can have it
reopened: the ticket goes to the new status ``reopened`` (a string column, so
no type change) and ``reopens`` counts how often that happened, for the
supervisors' lists and the agencies' ranking; the reasons are in the history.

``ratings`` holds the satisfaction survey's answers (1 to 5), one per call at
most (the unique ``call_id``; web ratings have no call), with what the
reports group them by kept as it was at the time: the agent who handled the
call, the ticket's agency, topic and level.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as t:
        t.add_column(sa.Column("reopens", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("agent_extension", sa.String(length=16), nullable=True),
        sa.Column("agent_name", sa.String(length=200), nullable=True),
        sa.Column("agency_id", sa.Integer(), nullable=True),
        sa.Column("topic", sa.String(length=32), nullable=True),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_ratings_rating")),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ratings_ticket_id_tickets")
        ),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name=op.f("fk_ratings_call_id_calls")),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_ratings_agency_id_agencies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ratings")),
        sa.UniqueConstraint("call_id", name=op.f("uq_ratings_call_id")),
    )
    op.create_index("ix_ratings_ticket_id", "ratings", ["ticket_id"])
    op.create_index("ix_ratings_at", "ratings", ["at"])


def downgrade() -> None:
    op.drop_index("ix_ratings_at", table_name="ratings")
    op.drop_index("ix_ratings_ticket_id", table_name="ratings")
    op.drop_table("ratings")
    with op.batch_alter_table("tickets") as t:
        t.drop_column("reopens")
