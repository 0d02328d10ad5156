"""confidential: the citizen's consent to be known to the agency; ticket views audit

Revision ID: 0036
Revises: 0035

``tickets.identity_consent``: the citizen agreed that the agency may see their name,
phone, email and address (otherwise it reads a pseudonym).  ``ticket_views``: every
showing of a restricted report (tickets.confidential), append-only like
``recording_access`` (0007).  The ``oversight`` role needs nothing here: ``users.role``
is a plain string.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0036"
down_revision: str | None = "0035"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a plain ADD COLUMN: rebuilding tickets in batch mode (SQLite) would drop the table
    # other tables' rows refer to
    op.add_column(
        "tickets",
        sa.Column("identity_consent", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "ticket_views",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("user_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("how", sa.String(length=8), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_views_ticket_id_tickets")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_ticket_views_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_views")),
    )
    with op.batch_alter_table("ticket_views", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_views_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_ticket_views_ticket_id"), ["ticket_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ticket_views_user_id"), ["user_id"], unique=False)

    # append-only: the database itself refuses to change or delete a row
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION ticket_views_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'ticket views log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER ticket_views_append_only BEFORE UPDATE OR DELETE "
            "ON ticket_views FOR EACH ROW EXECUTE FUNCTION ticket_views_append_only()"
        )
    else:
        for what in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER ticket_views_no_{what.lower()} BEFORE {what} "
                "ON ticket_views "
                "BEGIN SELECT RAISE(ABORT, 'ticket views log is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ticket_views_append_only ON ticket_views")
        op.execute("DROP FUNCTION IF EXISTS ticket_views_append_only()")
    else:
        for what in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS ticket_views_no_{what}")
    with op.batch_alter_table("ticket_views", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_views_user_id"))
        batch_op.drop_index(batch_op.f("ix_ticket_views_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_ticket_views_at"))
    op.drop_table("ticket_views")
    # a plain DROP COLUMN (SQLite >= 3.35): rebuilding tickets in batch mode would drop
    # the table other tables' rows refer to
    op.drop_column("tickets", "identity_consent")
