"""knowledge base: procedure articles, their versions, searches; tickets.kb_article_id

Revision ID: 0028
Revises: 0027

Level-1 questions are answered from articles on administrative procedures.
Each edit is a row of ``kb_article_versions`` (never changed afterwards); the
article row holds the newest one and the folded text the agents' search
looks in.  ``kb_searches`` keeps the searches made, for the report of those
that found nothing.  A ticket records the article (and version) it was
answered with.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _content() -> list[sa.Column]:
    return [
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("summary", sa.Text, nullable=True),
        sa.Column("steps", sa.Text, nullable=False),
        sa.Column("documents", sa.Text, nullable=True),
        sa.Column("fees", sa.String(300), nullable=True),
        sa.Column("processing_time", sa.String(300), nullable=True),
        sa.Column(
            "agency_id",
            sa.Integer,
            sa.ForeignKey("agencies.id"),
            nullable=True,
        ),
        sa.Column("templates", sa.Text, nullable=True),
        sa.Column("keywords", sa.Text, nullable=True),
        sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
    ]


def upgrade() -> None:
    op.create_table(
        "kb_articles",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(60), nullable=False),
        *_content(),
        sa.Column("example", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("uses", sa.Integer, nullable=False, server_default="0"),
        sa.Column("views", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("search_text", sa.Text, nullable=False, server_default=""),
        sa.Column("title_text", sa.Text, nullable=False, server_default=""),
        sa.UniqueConstraint("code", name="uq_kb_articles_code"),
    )
    op.create_index("ix_kb_articles_agency_id", "kb_articles", ["agency_id"])
    op.create_table(
        "kb_article_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("article_id", sa.Integer, sa.ForeignKey("kb_articles.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        *_content(),
        sa.Column("edited_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("edited_by_name", sa.String(200), nullable=False),
        sa.Column("edited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.String(300), nullable=True),
        sa.UniqueConstraint("article_id", "version", name="uq_kb_article_versions_article_id"),
    )
    op.create_index("ix_kb_article_versions_article_id", "kb_article_versions", ["article_id"])
    op.create_table(
        "kb_searches",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("query", sa.String(300), nullable=False),
        sa.Column("folded", sa.String(300), nullable=False),
        sa.Column("results", sa.Integer, nullable=False),
    )
    op.create_index("ix_kb_searches_at", "kb_searches", ["at"])
    op.create_index("ix_kb_searches_user_at", "kb_searches", ["user_id", "at"])
    # plain ADD COLUMN on both (no copy of the tickets table on SQLite); the foreign key
    # is added where the database can add one to an existing table
    op.add_column("tickets", sa.Column("kb_article_id", sa.Integer, nullable=True))
    op.add_column("tickets", sa.Column("kb_article_version", sa.Integer, nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.create_foreign_key(
            "fk_tickets_kb_article_id_kb_articles",
            "tickets",
            "kb_articles",
            ["kb_article_id"],
            ["id"],
        )
    op.create_index("ix_tickets_kb_article_id", "tickets", ["kb_article_id"])


def downgrade() -> None:
    op.drop_index("ix_tickets_kb_article_id", "tickets")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("fk_tickets_kb_article_id_kb_articles", "tickets", type_="foreignkey")
    # plain DROP COLUMN on both (SQLite >= 3.35 has it): no copy of the tickets table,
    # which the other tables' foreign keys point at
    op.drop_column("tickets", "kb_article_version")
    op.drop_column("tickets", "kb_article_id")
    op.drop_table("kb_searches")
    op.drop_table("kb_article_versions")
    op.drop_table("kb_articles")
