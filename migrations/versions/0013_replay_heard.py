"""replay audit: which page session played, and the ranges heard

Revision ID: 0013
Revises: 0012

A replay is now written when audio is actually played (the waveform comes
from the server, so opening the page fetches none), once per page session
(``session``), and what was heard follows in ``heard`` rows (``heard``: the
ranges, e.g. ``0:00–0:12, 0:30–0:45``).  Both columns are new and nullable:
no existing row changes, and the append-only triggers stay as they are.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("recording_access", sa.Column("session", sa.String(length=32), nullable=True))
    op.add_column("recording_access", sa.Column("heard", sa.String(length=500), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+ too): no table rebuild, the triggers stay
    op.drop_column("recording_access", "heard")
    op.drop_column("recording_access", "session")
