"""national phones: citizens' and callers' numbers in one form

Revision ID: 0021
Revises: 0020

A ticket typed with ``+84 90 123 4567`` and a call from ``84901234567`` are
the same citizen; the application now keeps Vietnamese numbers in their
national form (``core.phones.national_form``: ``0901234567``) so the IVR's
follow-up, the screen-pop's history and the callbacks find each other's
rows.  Tickets written before are put in the national form here (their
``search_text`` with them), in batches, since every lookup by a caller's
number reads them.  Call records, callbacks and the dismissals of the
"callers who gave up" list (append-only) keep the form they were recorded
in: they are matched among themselves, and new ones come in national form.
Numbers of other countries are left as they are.  The downgrade keeps the national
form: the old one was whatever each source sent, and both forms were valid.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.phones import national_form

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000
_INTERNATIONAL = ("+84%", "84%", "0084%")
_tickets = sa.table(
    "tickets",
    sa.column("id", sa.Integer),
    sa.column("citizen_phone", sa.String),
    sa.column("search_text", sa.Text),
)


def upgrade() -> None:
    bind = op.get_bind()
    phone = _tickets.c.citizen_phone
    last = 0
    while True:
        rows = bind.execute(
            sa.select(_tickets)
            .where(_tickets.c.id > last, sa.or_(*(phone.like(p) for p in _INTERNATIONAL)))
            .order_by(_tickets.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        for row in rows:
            new = national_form(row.citizen_phone)
            if new != row.citizen_phone:
                bind.execute(
                    sa.update(_tickets)
                    .where(_tickets.c.id == row.id)
                    .values(
                        citizen_phone=new,
                        search_text=(row.search_text or "").replace(row.citizen_phone, new),
                    )
                )
        last = rows[-1].id


def downgrade() -> None:
    pass
