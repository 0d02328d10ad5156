"""email: a mail's own headers beside its inbox row; attachments of messages

Revision ID: 0032
Revises: 0031

A mail in or out is a row of ``messages`` (channel ``email``, ``external_id``
its Message-ID) and one of ``message_emails``: the subject, the thread's
headers (In-Reply-To, References), the sanitised HTML, and, for a mail read
from the mailbox, the folder's UIDVALIDITY and the mail's UID, unique
together, so a mail fetched again after a crash is recognised and never
stored twice.

A mail's attachments are rows of ``attachments`` like a web report's photos:
``message_id`` says whose they are, and ``ticket_id`` is empty until the mail
becomes or joins a ticket.  ``content_type`` grows to 127 characters (RFC
6838's limit of a type and subtype: office documents' types are longer than 64).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "message_emails",
        sa.Column(
            "message_id",
            sa.Integer,
            sa.ForeignKey("messages.id", name="fk_message_emails_message_id_messages"),
            primary_key=True,
        ),
        sa.Column("rfc_message_id", sa.Text, nullable=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("in_reply_to", sa.Text, nullable=True),
        sa.Column("references", sa.Text, nullable=True),
        sa.Column("html", sa.Text, nullable=True),
        sa.Column("from_header", sa.Text, nullable=True),
        sa.Column("size", sa.Integer, nullable=True),
        sa.Column("folder", sa.String(200), nullable=True),
        sa.Column("uidvalidity", sa.BigInteger, nullable=True),
        sa.Column("uid", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("folder", "uidvalidity", "uid", name="uq_message_emails_folder"),
    )
    with op.batch_alter_table("attachments") as t:
        t.add_column(sa.Column("message_id", sa.Integer, nullable=True))
        t.create_foreign_key(
            "fk_attachments_message_id_messages", "messages", ["message_id"], ["id"]
        )
        t.alter_column("ticket_id", existing_type=sa.Integer(), nullable=True)
        t.alter_column(
            "content_type", existing_type=sa.String(length=64), type_=sa.String(length=127)
        )
    op.create_index("ix_attachments_message_id", "attachments", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_attachments_message_id", table_name="attachments")
    op.execute("DELETE FROM attachments WHERE ticket_id IS NULL")
    with op.batch_alter_table("attachments") as t:
        t.drop_constraint("fk_attachments_message_id_messages", type_="foreignkey")
        t.drop_column("message_id")
        t.alter_column("ticket_id", existing_type=sa.Integer(), nullable=False)
        t.alter_column(
            "content_type", existing_type=sa.String(length=127), type_=sa.String(length=64)
        )
    op.drop_table("message_emails")
