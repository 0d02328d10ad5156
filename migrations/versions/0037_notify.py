"""notify: the notifications owed to citizens and agencies, the SMS surveys, voice
messages in the inbox

Revision ID: 0037
Revises: 0036

``notifications``: one row per notification owed (unique ``dedupe``), written when it
becomes owed and sent when due; an SMS one names its row of ``messages``.
``sms_surveys``: the "reply 1-5" SMS sent with a result and what the citizen replied.
``messages.voice_message_id``: a voice message left in the overflow is an item of the
desks' inbox (channel ``voice``), once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0037"
down_revision: str | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dedupe", sa.String(300), nullable=False),
        sa.Column(
            "ticket_id",
            sa.Integer,
            sa.ForeignKey("tickets.id", name="fk_notifications_ticket_id_tickets"),
            nullable=True,
        ),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("recipient", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(300), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column(
            "message_id",
            sa.Integer,
            sa.ForeignKey("messages.id", name="fk_notifications_message_id_messages"),
            nullable=True,
        ),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("dedupe", name="uq_notifications_dedupe"),
    )
    op.create_index("ix_notifications_due", "notifications", ["state", "due_at"])
    op.create_index("ix_notifications_ticket_id", "notifications", ["ticket_id"])
    op.create_index("ix_notifications_message_id", "notifications", ["message_id"])
    op.create_index("ix_notifications_created_at", "notifications", ["created_at"])
    op.create_table(
        "sms_surveys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "ticket_id",
            sa.Integer,
            sa.ForeignKey("tickets.id", name="fk_sms_surveys_ticket_id_tickets"),
            nullable=False,
        ),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column(
            "notification_id",
            sa.Integer,
            sa.ForeignKey("notifications.id", name="fk_sms_surveys_notification_id_notifications"),
            nullable=False,
        ),
        sa.Column("rating", sa.Integer, nullable=True),
        sa.Column(
            "rating_id",
            sa.Integer,
            sa.ForeignKey("ratings.id", name="fk_sms_surveys_rating_id_ratings"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("notification_id", name="uq_sms_surveys_notification_id"),
    )
    op.create_index("ix_sms_surveys_ticket_id", "sms_surveys", ["ticket_id"])
    op.create_index("ix_sms_surveys_number", "sms_surveys", ["number", "state"])
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("voice_message_id", sa.Integer, nullable=True))
        batch_op.create_foreign_key(
            "fk_messages_voice_message_id_voice_messages",
            "voice_messages",
            ["voice_message_id"],
            ["id"],
        )
        batch_op.create_unique_constraint("uq_messages_voice_message_id", ["voice_message_id"])


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint("uq_messages_voice_message_id", type_="unique")
        batch_op.drop_constraint("fk_messages_voice_message_id_voice_messages", type_="foreignkey")
        batch_op.drop_column("voice_message_id")
    op.drop_table("sms_surveys")
    op.drop_table("notifications")
