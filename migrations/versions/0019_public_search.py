"""public search: tickets.public_text, the folded text the public portal searches

Revision ID: 0019
Revises: 0018

The portal of completed reports is searched by anyone, so it must never
match on the citizen's name, phone or address, which ``search_text`` holds
beside the report.  ``public_text`` holds only the public columns (the
district and the report), folded with ``core.text.fold_phrase`` like
``search_text``; the ticket service writes it with them.  Existing tickets
get theirs here, in batches, in Python (the folding is the application's).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.text import fold_phrase

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000
# the columns as they are at this revision (tickets.models.PUBLIC_SEARCHED)
PUBLIC_SEARCHED = ("district", "description")

_tickets = sa.table(
    "tickets",
    sa.column("id", sa.Integer),
    sa.column("public_text", sa.Text),
    *(sa.column(name, sa.Text) for name in PUBLIC_SEARCHED),
)


def upgrade() -> None:
    op.add_column("tickets", sa.Column("public_text", sa.Text(), server_default="", nullable=False))
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.select(_tickets.c.id, *(_tickets.c[n] for n in PUBLIC_SEARCHED))
            .where(_tickets.c.id > last)
            .order_by(_tickets.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        bind.execute(
            _tickets.update()
            .where(_tickets.c.id == sa.bindparam("row_id"))
            .values(public_text=sa.bindparam("folded")),
            [
                {
                    "row_id": row.id,
                    "folded": "\n".join(
                        fold_phrase(getattr(row, n) or "") for n in PUBLIC_SEARCHED
                    ),
                }
                for row in rows
            ],
        )
        last = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table("tickets") as t:
        t.drop_column("public_text")
