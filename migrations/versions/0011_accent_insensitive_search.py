"""accent-insensitive search: tickets.search_text, transcript segments folded

Revision ID: 0011
Revises: 0010

Every search folds the stored text and the query with ``core.text.fold``
(lower case, combining marks dropped, "đ" read as "d"), so "nguyen huu canh"
finds "Nguyễn Hữu Cảnh" on SQLite and PostgreSQL alike.

- ``tickets.search_text`` is new: the searched columns (code, citizen's
  phone, name and address, the report) folded, one a line; the ticket
  service writes it with them.  Existing tickets get theirs here.
- ``transcript_segments.search_text`` held the text NFC and case-folded with
  its accents; it is folded now.  The full-text indexes follow: the FTS5
  table through its update trigger on SQLite, the GIN expression index by
  itself on PostgreSQL.

Rows are rewritten in batches, in Python: the folding is the application's,
not a database function, so both databases hold exactly the same text.  The
searched columns are listed here as they are at this revision.
"""

import unicodedata
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

from core.text import fold, fold_phrase

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000
TICKET_SEARCHED = ("code", "citizen_phone", "citizen_name", "citizen_address", "description")

_tickets = sa.table(
    "tickets",
    sa.column("id", sa.Integer),
    sa.column("search_text", sa.Text),
    *(sa.column(name, sa.Text) for name in TICKET_SEARCHED),
)
_segments = sa.table(
    "transcript_segments",
    sa.column("id", sa.Integer),
    sa.column("text", sa.Text),
    sa.column("search_text", sa.Text),
)


def _ticket_text(row: sa.Row) -> str:
    return "\n".join(fold_phrase(getattr(row, name) or "") for name in TICKET_SEARCHED)


def _segment_text(row: sa.Row) -> str:
    return fold(row.text)


def _accented_segment_text(row: sa.Row) -> str:
    # what 0004 to 0010 stored: NFC, case-folded, accents kept
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", row.text).casefold())


def _rewrite(
    table: sa.TableClause,
    columns: Sequence[str],
    compute: Callable[[sa.Row], str],
) -> None:
    """Set ``search_text`` of every row of ``table`` to ``compute(row)``, a batch at a time."""
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.select(table.c.id, *(table.c[name] for name in columns))
            .where(table.c.id > last)
            .order_by(table.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        bind.execute(
            table.update()
            .where(table.c.id == sa.bindparam("row_id"))
            .values(search_text=sa.bindparam("folded")),
            [{"row_id": row.id, "folded": compute(row)} for row in rows],
        )
        last = rows[-1].id


def upgrade() -> None:
    op.add_column("tickets", sa.Column("search_text", sa.Text(), server_default="", nullable=False))
    _rewrite(_tickets, TICKET_SEARCHED, _ticket_text)
    _rewrite(_segments, ("text",), _segment_text)


def downgrade() -> None:
    _rewrite(_segments, ("text",), _accented_segment_text)
    op.drop_column("tickets", "search_text")
