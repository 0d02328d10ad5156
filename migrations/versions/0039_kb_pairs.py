"""kb_pairs: the knowledge base's index of consecutive word pairs

Revision ID: 0039
Revises: 0038

``kb_pairs`` holds every pair of consecutive folded words of an article's search
text once (and whether the title has them one after the other): the search decides
the phrase bonus from it (a query of two words: the pair, the second word by its
start) or reads the text only of the articles having every pair of the query,
instead of every article having all its words.  It is filled here from the
articles' ``search_text`` and ``title_text``, which are folded already, words cut
as ``kb_words`` cuts them.  On PostgreSQL both words compare byte by byte
(collation "C") so the index serves the range of words starting with a prefix.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0039"
down_revision: str | None = "0038"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORD_MAX = 64


def _word_type() -> sa.types.TypeEngine:
    return sa.String(WORD_MAX).with_variant(sa.String(WORD_MAX, collation="C"), "postgresql")


def _pairs(text: str) -> list[tuple[str, str]]:
    cut = [w[:WORD_MAX] for w in text.split()]
    return list(zip(cut, cut[1:], strict=False))


def upgrade() -> None:
    pairs = op.create_table(
        "kb_pairs",
        sa.Column("article_id", sa.Integer, sa.ForeignKey("kb_articles.id"), nullable=False),
        sa.Column("word", _word_type(), nullable=False),
        sa.Column("next_word", _word_type(), nullable=False),
        sa.Column("title", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("article_id", "word", "next_word", name="pk_kb_pairs"),
    )
    op.create_index("ix_kb_pairs_word", "kb_pairs", ["word", "next_word", "article_id", "title"])
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, title_text, search_text FROM kb_articles")).all()
    batch: list[dict[str, object]] = []
    for article_id, title_text, search_text in rows:
        in_title = set(_pairs(title_text or ""))
        for w, n in dict.fromkeys(_pairs(search_text or "")):
            batch.append(
                {"article_id": article_id, "word": w, "next_word": n, "title": (w, n) in in_title}
            )
        if len(batch) > 5000:
            op.bulk_insert(pairs, batch)
            batch = []
    if batch:
        op.bulk_insert(pairs, batch)


def downgrade() -> None:
    op.drop_table("kb_pairs")
