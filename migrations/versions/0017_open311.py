"""open311: API keys, their audit log, and what an Open311 report brings

Revision ID: 0017
Revises: 0016

Programs (city apps, partners' sites) file reports through the Open311
GeoReport v2 API with a key an admin issued.  ``api_keys`` holds the keys
(the secret only as a digest; revoked, never deleted), ``api_key_events``
who issued or revoked which key and when (append-only: the database refuses
to change or delete a row), and ``open311_requests`` which key made which
ticket, from where, with the spec's fields a ticket has no column for
(latitude/longitude, the media URL kept as text, device and account ids).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key_id", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("issued_by", sa.Integer(), nullable=True),
        sa.Column("issued_by_name", sa.String(length=200), nullable=False),
        sa.Column("issued_at", DT, nullable=False),
        sa.Column("revoked_at", DT, nullable=True),
        sa.Column("last_used_at", DT, nullable=True),
        sa.ForeignKeyConstraint(
            ["issued_by"], ["users.id"], name=op.f("fk_api_keys_issued_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_id", name=op.f("uq_api_keys_key_id")),
    )
    op.create_table(
        "api_key_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("at", DT, nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_api_key_events_api_key_id_api_keys")
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_api_key_events_actor_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key_events")),
    )
    op.create_index(op.f("ix_api_key_events_api_key_id"), "api_key_events", ["api_key_id"])
    op.create_table(
        "open311_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("long", sa.Float(), nullable=True),
        sa.Column("media_url", sa.Text(), nullable=True),
        sa.Column("device_id", sa.String(length=100), nullable=True),
        sa.Column("account_id", sa.String(length=100), nullable=True),
        sa.Column("created_at", DT, nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_open311_requests_ticket_id_tickets")
        ),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_open311_requests_api_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open311_requests")),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_open311_requests_ticket_id")),
    )
    op.create_index(op.f("ix_open311_requests_api_key_id"), "open311_requests", ["api_key_id"])

    # The key audit log is append-only, as the replay audit log is (0007).
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION api_key_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'API key audit log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER api_key_events_append_only BEFORE UPDATE OR DELETE "
            "ON api_key_events FOR EACH ROW EXECUTE FUNCTION api_key_events_append_only()"
        )
    else:
        for what in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER api_key_events_no_{what.lower()} BEFORE {what} "
                "ON api_key_events "
                "BEGIN SELECT RAISE(ABORT, 'API key audit log is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS api_key_events_append_only ON api_key_events")
        op.execute("DROP FUNCTION IF EXISTS api_key_events_append_only()")
    else:
        for what in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS api_key_events_no_{what}")
    op.drop_index(op.f("ix_open311_requests_api_key_id"), table_name="open311_requests")
    op.drop_table("open311_requests")
    op.drop_index(op.f("ix_api_key_events_api_key_id"), table_name="api_key_events")
    op.drop_table("api_key_events")
    op.drop_table("api_keys")
