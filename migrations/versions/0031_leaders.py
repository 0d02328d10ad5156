"""leaders: the knowledge base's word index, the weekly reconciliation, stored reports

Revision ID: 0031
Revises: 0030

``kb_words`` holds every folded word of an article's search text once (and whether
it is in the title): the knowledge-base search looks a query word up by its start
in this index instead of reading every article's text.  It is filled here from the
articles' ``search_text`` and ``title_text``, which are folded already.  On
PostgreSQL the word compares byte by byte (collation "C") so the index serves the
range of words starting with a prefix.

``reconciliations`` and ``reconciliation_items``: each agency's list of the tickets
forwarded to it in a week, each confirmed or disputed by its officers.

``periodic_reports``: the leaders' reports written on the schedule (files under
``<state_dir>/reports``) and whether they were sent.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORD_MAX = 64


def _word_type() -> sa.types.TypeEngine:
    return sa.String(WORD_MAX).with_variant(sa.String(WORD_MAX, collation="C"), "postgresql")


def upgrade() -> None:
    words = op.create_table(
        "kb_words",
        sa.Column("article_id", sa.Integer, sa.ForeignKey("kb_articles.id"), nullable=False),
        sa.Column("word", _word_type(), nullable=False),
        sa.Column("title", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("article_id", "word", name="pk_kb_words"),
    )
    op.create_index("ix_kb_words_word", "kb_words", ["word", "article_id", "title"])
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, title_text, search_text FROM kb_articles")).all()
    batch: list[dict[str, object]] = []
    for article_id, title_text, search_text in rows:
        in_title = {w[:WORD_MAX] for w in (title_text or "").split()}
        for w in dict.fromkeys(x[:WORD_MAX] for x in (search_text or "").split()):
            batch.append({"article_id": article_id, "word": w, "title": w in in_title})
        if len(batch) > 5000:
            op.bulk_insert(words, batch)
            batch = []
    if batch:
        op.bulk_insert(words, batch)

    op.create_table(
        "reconciliations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("agency_id", sa.Integer, sa.ForeignKey("agencies.id"), nullable=False),
        sa.Column("week_start", sa.Date, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("agency_id", "week_start", name="uq_reconciliations_agency_id"),
    )
    op.create_index("ix_reconciliations_agency_id", "reconciliations", ["agency_id"])
    op.create_index("ix_reconciliations_week_start", "reconciliations", ["week_start"])
    op.create_table(
        "reconciliation_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "reconciliation_id", sa.Integer, sa.ForeignKey("reconciliations.id"), nullable=False
        ),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("forwarded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("status_seen", sa.String(20), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("decided_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("decided_by_name", sa.String(200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.Text, nullable=True),
        sa.Column("resolved_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("resolved_by_name", sa.String(200), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.UniqueConstraint(
            "reconciliation_id", "ticket_id", name="uq_reconciliation_items_reconciliation_id"
        ),
    )
    op.create_index(
        "ix_reconciliation_items_reconciliation_id", "reconciliation_items", ["reconciliation_id"]
    )
    op.create_index("ix_reconciliation_items_ticket_id", "reconciliation_items", ["ticket_id"])

    op.create_table(
        "periodic_reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("generated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("xlsx_size", sa.Integer, nullable=False),
        sa.Column("pdf_size", sa.Integer, nullable=False),
        sa.Column("recipients", sa.Text, nullable=False, server_default="[]"),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("send_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("send_error", sa.Text, nullable=True),
        sa.UniqueConstraint("kind", "period_start", name="uq_periodic_reports_kind"),
    )
    op.create_index("ix_periodic_reports_generated_at", "periodic_reports", ["generated_at"])


def downgrade() -> None:
    op.drop_table("periodic_reports")
    op.drop_table("reconciliation_items")
    op.drop_table("reconciliations")
    op.drop_table("kb_words")
