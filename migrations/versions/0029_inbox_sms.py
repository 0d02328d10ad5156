"""inbox: messages in and out on every channel, and delivery reports

Revision ID: 0029
Revises: 0028

One table for the citizens' messages whatever the channel (SMS now; email
and voice messages later): direction, the citizen's address, the body, the
gateway's id (unique per channel and direction: a second delivery of the same
SMS is no second row), the desk's team, the state, the agent who claimed it
and the ticket it went to.  The delivery reports of the messages we send are
rows of their own, never changed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=True),
        sa.Column("citizen", sa.String(200), nullable=False),
        sa.Column("service_address", sa.String(200), nullable=False),
        sa.Column("team", sa.String(32), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("flag", sa.String(16), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column(
            "ticket_id",
            sa.Integer,
            sa.ForeignKey("tickets.id", name="fk_messages_ticket_id_tickets"),
            nullable=True,
        ),
        sa.Column(
            "claimed_by",
            sa.Integer,
            sa.ForeignKey("users.id", name="fk_messages_claimed_by_users"),
            nullable=True,
        ),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "reply_to_id",
            sa.Integer,
            sa.ForeignKey("messages.id", name="fk_messages_reply_to_id_messages"),
            nullable=True,
        ),
        sa.Column(
            "sent_by",
            sa.Integer,
            sa.ForeignKey("users.id", name="fk_messages_sent_by_users"),
            nullable=True,
        ),
        sa.Column("coding", sa.String(8), nullable=True),
        sa.Column("parts", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.UniqueConstraint("channel", "direction", "external_id", name="uq_messages_external"),
    )
    op.create_index("ix_messages_desk", "messages", ["direction", "state", "team"])
    op.create_index("ix_messages_citizen", "messages", ["citizen"])
    op.create_index("ix_messages_state", "messages", ["state"])
    op.create_index("ix_messages_ticket_id", "messages", ["ticket_id"])
    op.create_index("ix_messages_claimed_by", "messages", ["claimed_by"])
    op.create_index("ix_messages_reply_to_id", "messages", ["reply_to_id"])
    op.create_index("ix_messages_created_at", "messages", ["created_at"])
    op.create_table(
        "message_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "message_id",
            sa.Integer,
            sa.ForeignKey("messages.id", name="fk_message_deliveries_message_id_messages"),
            nullable=False,
        ),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_message_deliveries_message_id", "message_deliveries", ["message_id"])


def downgrade() -> None:
    op.drop_table("message_deliveries")
    op.drop_table("messages")
