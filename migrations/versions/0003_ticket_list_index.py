"""ticket lists: an index on (status, created_at, id)

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_tickets_status_created", "tickets", ["status", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_tickets_status_created", table_name="tickets")
