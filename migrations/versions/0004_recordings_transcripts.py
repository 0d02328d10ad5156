"""transcripts, transcription jobs, replay audit (filled by the recordings work)

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from alembic import op  # noqa: F401

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
