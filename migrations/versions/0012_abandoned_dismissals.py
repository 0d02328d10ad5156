"""abandoned callers marked "no need to call back", with who, when and why

Revision ID: 0012
Revises: 0011

The list of callers who gave up and have not been reached since is a query
over ``calls`` (callcenter/abandoned.py); the only thing it keeps is the
supervisor's or agent's decision that a caller needs no callback, one
append-only row per decision.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "abandoned_dismissals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("up_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dismissed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dismissed_by", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_abandoned_dismissals")),
    )
    with op.batch_alter_table("abandoned_dismissals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_abandoned_dismissals_number"), ["number"], unique=False
        )
    # an audit trail: the database itself refuses to change or delete a decision
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION abandoned_dismissals_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'abandoned dismissals are append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER abandoned_dismissals_append_only BEFORE UPDATE OR DELETE "
            "ON abandoned_dismissals FOR EACH ROW "
            "EXECUTE FUNCTION abandoned_dismissals_append_only()"
        )
    else:
        for what in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER abandoned_dismissals_no_{what.lower()} BEFORE {what} "
                "ON abandoned_dismissals "
                "BEGIN SELECT RAISE(ABORT, 'abandoned dismissals are append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP TRIGGER IF EXISTS abandoned_dismissals_append_only ON abandoned_dismissals"
        )
        op.execute("DROP FUNCTION IF EXISTS abandoned_dismissals_append_only()")
    else:
        for what in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS abandoned_dismissals_no_{what}")
    with op.batch_alter_table("abandoned_dismissals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_abandoned_dismissals_number"))
    op.drop_table("abandoned_dismissals")
