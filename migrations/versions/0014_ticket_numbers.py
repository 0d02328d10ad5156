"""ticket numbers: an all-digit tracking number beside every ticket's code

Revision ID: 0014
Revises: 0013

``tickets.number`` holds 9 random digits (the first not 0) and a Damm check
digit (``tickets.numbers``), for citizens who key their report's number on a
phone and agents who read it out.  Existing tickets get theirs here, drawn at
random like new ones, with no two alike; then a unique index keeps it so.

The column is NOT NULL on PostgreSQL.  SQLite cannot change a column's
nullability without rebuilding the table (and ``tickets`` is referenced from
several others), so there it stays nullable: the service always writes it.
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from stdnum import damm

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000

_tickets = sa.table("tickets", sa.column("id", sa.Integer), sa.column("number", sa.String))


def _new_number(taken: set[str]) -> str:
    # as tickets.numbers.new_number at this revision: 9 digits, the first not 0, and Damm's
    while True:
        body = str(10**8 + secrets.randbelow(9 * 10**8))
        number = body + damm.calc_check_digit(body)
        if number not in taken:
            taken.add(number)
            return number


def upgrade() -> None:
    op.add_column("tickets", sa.Column("number", sa.String(length=10), nullable=True))
    bind = op.get_bind()
    taken: set[str] = set()
    last = 0
    while True:
        ids = (
            bind.execute(
                sa.select(_tickets.c.id)
                .where(_tickets.c.id > last)
                .order_by(_tickets.c.id)
                .limit(BATCH)
            )
            .scalars()
            .all()
        )
        if not ids:
            break
        bind.execute(
            _tickets.update()
            .where(_tickets.c.id == sa.bindparam("row_id"))
            .values(number=sa.bindparam("new")),
            [{"row_id": i, "new": _new_number(taken)} for i in ids],
        )
        last = ids[-1]
    op.create_index(op.f("ix_tickets_number"), "tickets", ["number"], unique=True)
    if bind.dialect.name != "sqlite":
        op.alter_column("tickets", "number", existing_type=sa.String(length=10), nullable=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_tickets_number"), table_name="tickets")
    op.drop_column("tickets", "number")
