"""replay and download audit log (filled by the replay work)

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

from alembic import op  # noqa: F401

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
