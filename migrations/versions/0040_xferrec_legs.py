"""transfer legs: when the target of a transfer answered the caller

Revision ID: 0040
Revises: 0039

``call_transfers.answered_at``: the moment the leg a transfer began was answered (a
queue's agent, a phone, an agency or an emergency desk picked up; for an attended
transfer, its completion).  The call's talk time adds up every answered leg of the
chain from it (callcenter.legs).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0040"
down_revision: str | None = "0039"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a plain ADD COLUMN: nothing to rebuild
    op.add_column(
        "call_transfers", sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("call_transfers", "answered_at")
