"""web report: the map pin of a report and the photos citizens attach

Revision ID: 0020
Revises: 0019

Citizens now report on the public web form (public/report.py).  They may put
a pin on a map: ``latitude`` and ``longitude`` on the ticket, NULL unless
they did.  They may attach a photo: one ``attachments`` row per file, the
bytes on disk under the state directory named by the row's random id, with
the content type found by decoding the file (never the name or type the
browser claimed).  Existing tickets have neither.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as t:
        t.add_column(sa.Column("latitude", sa.Float(), nullable=True))
        t.add_column(sa.Column("longitude", sa.Float(), nullable=True))
    op.create_table(
        "attachments",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("original_name", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_attachments_ticket_id", "attachments", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_attachments_ticket_id", table_name="attachments")
    op.drop_table("attachments")
    with op.batch_alter_table("tickets") as t:
        t.drop_column("longitude")
        t.drop_column("latitude")
