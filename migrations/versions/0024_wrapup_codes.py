"""wrapup codes: what the agent says an answered call was, who said it and when

Revision ID: 0024
Revises: 0023

After every answered call its agent picks a wrap-up code (``[wrapup] codes``:
ticket created, information given, silent, prank, ...); the reports count the
share of answered calls with usable content from it.  Calls made before have
no code (NULL): the reports count them as "no code".
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("calls", sa.Column("wrapup_code", sa.String(32), nullable=True))
    op.add_column("calls", sa.Column("wrapup_by", sa.String(100), nullable=True))
    op.add_column("calls", sa.Column("wrapup_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # in place, not a batch copy: other tables reference calls (SQLite 3.35+ drops
    # columns itself, as 0023 does)
    op.drop_column("calls", "wrapup_at")
    op.drop_column("calls", "wrapup_by")
    op.drop_column("calls", "wrapup_code")
