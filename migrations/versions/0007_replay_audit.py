"""replay and download audit log (append-only)

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recording_access",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("user_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_recording_access_call_id_calls")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_recording_access_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_access")),
    )
    with op.batch_alter_table("recording_access", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recording_access_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_recording_access_call_id"), ["call_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_recording_access_user_id"), ["user_id"], unique=False)

    # The audit log is append-only: the database itself refuses to change or
    # delete a row, whatever code (or person with a SQL prompt) tries.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION recording_access_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'recording access log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER recording_access_append_only BEFORE UPDATE OR DELETE "
            "ON recording_access FOR EACH ROW EXECUTE FUNCTION recording_access_append_only()"
        )
    else:
        for what in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER recording_access_no_{what.lower()} BEFORE {what} "
                "ON recording_access "
                "BEGIN SELECT RAISE(ABORT, 'recording access log is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS recording_access_append_only ON recording_access")
        op.execute("DROP FUNCTION IF EXISTS recording_access_append_only()")
    else:
        for what in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS recording_access_no_{what}")
    with op.batch_alter_table("recording_access", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recording_access_user_id"))
        batch_op.drop_index(batch_op.f("ix_recording_access_call_id"))
        batch_op.drop_index(batch_op.f("ix_recording_access_at"))
    op.drop_table("recording_access")
