"""refusals: refused answers, deadline extensions, reminders, staff attachments

Revision ID: 0035
Revises: 0034

A supervisor may send an agency's answer back (``answer_refusals``: the answer as
it was, the reason, the agency counted); an agency may ask for more time
(``deadline_extensions``, at most one open per ticket, a partial unique index;
the ticket's ``extension_until`` holds the open request's proposed deadline so
the workflow's table can see it); a reminder goes to the agency before each
deadline, once (``deadline_reminders``, unique per ticket and deadline).  Staff
and officers attach files: ``attachments`` gains who added one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # plain ADD COLUMN on both (no copy of the tickets table on SQLite, as 0028); the
    # foreign key is added where the database can add one to an existing table
    op.add_column("tickets", sa.Column("extension_until", sa.DateTime(timezone=True)))
    op.add_column("attachments", sa.Column("added_by", sa.Integer(), nullable=True))
    op.add_column("attachments", sa.Column("added_by_name", sa.String(200), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.create_foreign_key(
            "fk_attachments_added_by_users", "attachments", "users", ["added_by"], ["id"]
        )
    op.create_table(
        "answer_refusals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("agency_id", sa.Integer, sa.ForeignKey("agencies.id"), nullable=False),
        sa.Column("answer", sa.Text, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("refused_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("refused_by_name", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_answer_refusals_ticket_id", "answer_refusals", ["ticket_id"])
    op.create_index("ix_answer_refusals_agency_id", "answer_refusals", ["agency_id"])
    op.create_index("ix_answer_refusals_at", "answer_refusals", ["at"])
    op.create_table(
        "deadline_extensions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("agency_id", sa.Integer, sa.ForeignKey("agencies.id"), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("old_deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("proposed_deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("requested_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("requested_by_name", sa.String(200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("decided_by_name", sa.String(200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text, nullable=True),
    )
    op.create_index("ix_deadline_extensions_ticket_id", "deadline_extensions", ["ticket_id"])
    op.create_index("ix_deadline_extensions_agency_id", "deadline_extensions", ["agency_id"])
    op.create_index("ix_deadline_extensions_requested_at", "deadline_extensions", ["requested_at"])
    op.create_index(
        "ux_deadline_extensions_open",
        "deadline_extensions",
        ["ticket_id"],
        unique=True,
        sqlite_where=sa.text("state = 'open'"),
        postgresql_where=sa.text("state = 'open'"),
    )
    op.create_table(
        "deadline_reminders",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("agency_id", sa.Integer, sa.ForeignKey("agencies.id"), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("ticket_id", "deadline_at", name="uq_deadline_reminders_ticket_id"),
    )
    op.create_index("ix_deadline_reminders_ticket_id", "deadline_reminders", ["ticket_id"])


def downgrade() -> None:
    op.drop_table("deadline_reminders")
    op.drop_table("deadline_extensions")
    op.drop_table("answer_refusals")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("fk_attachments_added_by_users", "attachments", type_="foreignkey")
    # plain DROP COLUMN on both (SQLite >= 3.35 has it), as 0028
    op.drop_column("attachments", "added_by_name")
    op.drop_column("attachments", "added_by")
    op.drop_column("tickets", "extension_until")
