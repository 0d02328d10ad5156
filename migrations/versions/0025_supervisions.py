"""supervisions: the audit of supervisors in agents' calls

Revision ID: 0025
Revises: 0024

Every listen, whisper or barge from the live board is a row: who (account and
desk phone), whom (agent extension and the call's uniqueid), the mode, when
it started and ended.  Rows are never deleted.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "supervisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("channel_id", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer, nullable=True),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("supervisor_extension", sa.String(16), nullable=False),
        sa.Column("agent_extension", sa.String(16), nullable=False),
        sa.Column("call_uniqueid", sa.String(64), nullable=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.String(16), nullable=True),
    )
    op.create_index("ix_supervisions_user_id", "supervisions", ["user_id"])
    op.create_index("ix_supervisions_agent_extension", "supervisions", ["agent_extension"])
    op.create_index("ix_supervisions_call_uniqueid", "supervisions", ["call_uniqueid"])
    op.create_index("ix_supervisions_started_at", "supervisions", ["started_at"])


def downgrade() -> None:
    op.drop_table("supervisions")
