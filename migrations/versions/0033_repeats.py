"""repeats: repeat reports linked into groups; the terms their suggestions look up

Revision ID: 0033
Revises: 0032

A ticket may be linked to an earlier report of the same matter
(``tickets.repeat_of``, the group's ticket); the group's ticket counts them
(``repeats``) and is marked once the matter was reported
``[tickets] repeat_flag_after`` times unresolved (``repeat_flagged_at``).
``ticket_terms`` holds each report's folded word pairs (tickets.repeats.terms),
the index the suggestions are looked up in: filled here for the tickets of the
last ``[tickets] repeat_window_days`` days (older ones are never suggested).
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the longest window a configuration may set (core.settings.TicketSettings)
BACKFILL_DAYS = 3660
BATCH = 2000


def upgrade() -> None:
    # plain ADD COLUMN on both (no copy of the tickets table on SQLite); the foreign key
    # is added where the database can add one to an existing table (as 0028)
    op.add_column("tickets", sa.Column("repeat_of", sa.Integer, nullable=True))
    op.add_column("tickets", sa.Column("repeats", sa.Integer, nullable=False, server_default="0"))
    op.add_column(
        "tickets", sa.Column("repeat_flagged_at", sa.DateTime(timezone=True), nullable=True)
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.create_foreign_key(
            "fk_tickets_repeat_of_tickets", "tickets", "tickets", ["repeat_of"], ["id"]
        )
    op.create_index("ix_tickets_repeat_of", "tickets", ["repeat_of"])
    op.create_table(
        "ticket_terms",
        sa.Column("term", sa.String(81), nullable=False),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=False),
        sa.PrimaryKeyConstraint("term", "ticket_id", name="pk_ticket_terms"),
        sqlite_with_rowid=False,
    )
    _backfill(bind)


def _backfill(bind: sa.engine.Connection) -> None:
    """The terms of the tickets recent enough to be suggested, in batches."""
    from tickets.terms import terms  # the same folding as the application's

    tickets = sa.table(
        "tickets",
        sa.column("id", sa.Integer),
        sa.column("description", sa.Text),
        sa.column("citizen_address", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    rows_table = sa.table("ticket_terms", sa.column("term"), sa.column("ticket_id"))
    since = datetime.now(UTC) - timedelta(days=BACKFILL_DAYS)
    last = 0
    while True:
        batch = bind.execute(
            sa.select(tickets.c.id, tickets.c.description, tickets.c.citizen_address)
            .where(tickets.c.id > last, tickets.c.created_at >= since)
            .order_by(tickets.c.id)
            .limit(BATCH)
        ).all()
        if not batch:
            return
        rows = [
            {"term": t, "ticket_id": tid}
            for tid, description, address in batch
            for t in terms(description, address)
        ]
        if rows:
            bind.execute(sa.insert(rows_table), rows)
        last = batch[-1][0]


def downgrade() -> None:
    op.drop_table("ticket_terms")
    op.drop_index("ix_tickets_repeat_of", "tickets")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("fk_tickets_repeat_of_tickets", "tickets", type_="foreignkey")
    op.drop_column("tickets", "repeat_flagged_at")
    op.drop_column("tickets", "repeats")
    op.drop_column("tickets", "repeat_of")
