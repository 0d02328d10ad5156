"""Tables of the procedures knowledge base: articles, their versions, the searches made.

An article is the current text of one administrative procedure (title, steps,
documents, fees, processing time, the responsible agency, links to templates).
Every edit writes a new row of ``kb_article_versions`` and copies it into the
article, so the article row is what search reads and the versions are what was
read out on a given day.  ``search_text`` is the folded text search looks in
(:func:`tickets.kb.search.document_text`), written with the columns; ``kb_words``
holds each of its words once per article, the index the search finds articles by,
and ``kb_pairs`` each pair of consecutive words, the index that tells which articles
can have the query as a phrase (:mod:`tickets.kb.search` says why).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime

TITLE_MAX = 200
FIELD_MAX = 10000
SHORT_MAX = 300
CODE_MAX = 60
# the longest word kept in the word index: longer ones are cut (a query word is at most
# tickets.kb.search.MAX_WORD long, so a cut word is still found by its start)
WORD_MAX = 64


class Article(Base):
    """One procedure as it reads now (its newest version)."""

    __tablename__ = "kb_articles"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # a stable short name ("khai-sinh"): the starter set is loaded again by it
    code: Mapped[str] = mapped_column(String(CODE_MAX), unique=True)
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    summary: Mapped[str | None] = mapped_column(Text)
    steps: Mapped[str] = mapped_column(Text)
    documents: Mapped[str | None] = mapped_column(Text)
    fees: Mapped[str | None] = mapped_column(String(SHORT_MAX))
    processing_time: Mapped[str | None] = mapped_column(String(SHORT_MAX))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), index=True)
    # links to templates: one a line, "label | https://..." (or the address alone)
    templates: Mapped[str | None] = mapped_column(Text)
    # other words citizens use for it ("giấy khai sinh, làm khai sinh cho con")
    keywords: Mapped[str | None] = mapped_column(Text)
    # shipped with the example configuration, not written by this city's admins
    example: Mapped[bool] = mapped_column(default=False, server_default=false())
    # archived articles are not found by the agents' search; their versions stay
    archived: Mapped[bool] = mapped_column(default=False, server_default=false())
    # the current version's number; also the optimistic lock of edits
    version: Mapped[int] = mapped_column(Integer, default=1)
    # tickets answered with it (the report counts them per period from the tickets)
    uses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # opened from a search
    views: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # folded (lower case, no accents) words, " "-separated and padded with a space on
    # each side, so " word" finds a word's start: title, keywords, then the rest
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    # the same for the title alone (ranking)
    title_text: Mapped[str] = mapped_column(Text, default="", server_default="")


class ArticleVersion(Base):
    """One version of an article, as saved; rows are only ever inserted."""

    __tablename__ = "kb_article_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    summary: Mapped[str | None] = mapped_column(Text)
    steps: Mapped[str] = mapped_column(Text)
    documents: Mapped[str | None] = mapped_column(Text)
    fees: Mapped[str | None] = mapped_column(String(SHORT_MAX))
    processing_time: Mapped[str | None] = mapped_column(String(SHORT_MAX))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    templates: Mapped[str | None] = mapped_column(Text)
    keywords: Mapped[str | None] = mapped_column(Text)
    archived: Mapped[bool] = mapped_column(default=False, server_default=false())
    edited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    edited_by_name: Mapped[str] = mapped_column(String(200))
    edited_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # what the editor said of the change
    note: Mapped[str | None] = mapped_column(String(SHORT_MAX))

    __table_args__ = (UniqueConstraint("article_id", "version"),)


class Search(Base):
    """A search an agent made, and how many articles it found.

    The report of searches that found nothing (grouped by ``folded``) tells the
    admins what to write next.  A query typed on after a previous one of the same
    user (a longer or shorter form, within seconds) updates that row rather than
    adding one per keystroke.
    """

    __tablename__ = "kb_searches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    query: Mapped[str] = mapped_column(String(SHORT_MAX))
    folded: Mapped[str] = mapped_column(String(SHORT_MAX))
    results: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_kb_searches_at", "at"),
        Index("ix_kb_searches_user_at", "user_id", "at"),
    )


class ArticleWord(Base):
    """One folded word of an article's ``search_text``, once per article, and whether
    it is in the title: what the search looks words up in, by their start.

    Written with the article (:meth:`tickets.kb.service.KnowledgeBase.create` and
    ``update``).  On PostgreSQL the word is compared byte by byte (collation "C"), so
    that the range ``word >= 'kh' AND word < 'ki'`` is exactly the words starting with
    "kh" and the index answers it; SQLite compares bytes already.
    """

    __tablename__ = "kb_words"
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id"), primary_key=True)
    word: Mapped[str] = mapped_column(
        String(WORD_MAX).with_variant(String(WORD_MAX, collation="C"), "postgresql"),
        primary_key=True,
    )
    title: Mapped[bool] = mapped_column(Boolean, default=False)

    # the look-up by a word's start, answered from the index alone
    __table_args__ = (Index("ix_kb_words_word", "word", "article_id", "title"),)


class ArticlePair(Base):
    """Two consecutive folded words of an article's ``search_text`` (``word`` then
    ``next_word``), once per article, and whether the title has them one after the
    other: what the search decides the phrase bonus by, without reading the text.

    Written with the article and its words (:func:`tickets.kb.service.write_words`).
    Looked up by the first word exactly and the second by its start (the same range
    as ``kb_words``), so both compare byte by byte (collation "C" on PostgreSQL).
    """

    __tablename__ = "kb_pairs"
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id"), primary_key=True)
    word: Mapped[str] = mapped_column(
        String(WORD_MAX).with_variant(String(WORD_MAX, collation="C"), "postgresql"),
        primary_key=True,
    )
    next_word: Mapped[str] = mapped_column(
        String(WORD_MAX).with_variant(String(WORD_MAX, collation="C"), "postgresql"),
        primary_key=True,
    )
    title: Mapped[bool] = mapped_column(Boolean, default=False)

    # the look-up by the first word and the second's start, answered from the index alone
    __table_args__ = (Index("ix_kb_pairs_word", "word", "next_word", "article_id", "title"),)
