"""callbacks, their attempts, and voice messages

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "callbacks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("hotline_number", sa.String(length=20), nullable=True),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("number_source", sa.String(length=16), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_result", sa.String(length=16), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_extension", sa.String(length=16), nullable=True),
        sa.Column("agent_extension", sa.String(length=16), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=100), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("result_call_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name=op.f("fk_callbacks_call_id_calls")),
        sa.ForeignKeyConstraint(
            ["result_call_id"], ["calls.id"], name=op.f("fk_callbacks_result_call_id_calls")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callbacks")),
    )
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_callbacks_call_id"), ["call_id"], unique=False)
        batch_op.create_index("ix_callbacks_status_queued", ["status", "queued_at"], unique=False)

    op.create_table(
        "callback_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("callback_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("agent_extension", sa.String(length=16), nullable=True),
        sa.Column("uniqueid", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.String(length=64), nullable=True),
        sa.Column("by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["callback_id"],
            ["callbacks.id"],
            name=op.f("fk_callback_attempts_callback_id_callbacks"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_attempts")),
        sa.UniqueConstraint("uniqueid", name=op.f("uq_callback_attempts_uniqueid")),
    )
    with op.batch_alter_table("callback_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_callback_attempts_callback_id"), ["callback_id"], unique=False
        )

    op.create_table(
        "voice_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("uniqueid", sa.String(length=64), nullable=False),
        sa.Column("hotline_number", sa.String(length=20), nullable=True),
        sa.Column("team_id", sa.String(length=32), nullable=True),
        sa.Column("caller_number", sa.String(length=32), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("handled_by", sa.String(length=100), nullable=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("callback_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_voice_messages_call_id_calls")
        ),
        sa.ForeignKeyConstraint(
            ["callback_id"], ["callbacks.id"], name=op.f("fk_voice_messages_callback_id_callbacks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voice_messages")),
        sa.UniqueConstraint("uniqueid", name=op.f("uq_voice_messages_uniqueid")),
    )
    with op.batch_alter_table("voice_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_voice_messages_call_id"), ["call_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_voice_messages_recorded_at"), ["recorded_at"], unique=False
        )


def downgrade() -> None:
    op.drop_table("voice_messages")
    op.drop_table("callback_attempts")
    op.drop_table("callbacks")
