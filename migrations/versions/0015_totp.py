"""second factor: a TOTP secret per account, when it was switched on, last step used

Revision ID: 0015
Revises: 0014

Admins and supervisors may sign in with a code from an authenticator app
after their password (accounts/totp.py).  ``totp_secret`` is written at
enrolment, ``totp_enabled_at`` once a code from it was confirmed, and
``totp_last_step`` (the 30-second step of the last accepted code) refuses a
code typed twice.  All three are nullable: no existing account changes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("totp_secret", sa.String(length=64), nullable=True))
    op.add_column("users", sa.Column("totp_enabled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "totp_last_step")
    op.drop_column("users", "totp_enabled_at")
    op.drop_column("users", "totp_secret")
