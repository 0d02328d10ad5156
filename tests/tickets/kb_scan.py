"""The knowledge base's first search, kept as the reference the word index must agree with.

It compared every query word with every article's whole folded text (``instr`` on
SQLite, ``strpos`` on PostgreSQL): simple and obviously right, but slow over 5,000
articles under load.  :mod:`tickets.kb.search` now finds articles through the
``kb_words`` index; ``tests/tickets/test_kb_index.py`` checks both give the same
articles in the same order with the same scores, and ``bench/kb_search.py`` times
both side by side.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, desc, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement as Column

from tickets.kb.models import Article
from tickets.kb.search import contains


def all_words(dialect: str, column: Column[str], terms: Iterable[str]) -> ColumnElement[bool]:
    return and_(*(contains(dialect, column, f" {w}") for w in terms))


def some_words(dialect: str, column: Column[str], terms: list[str]) -> ColumnElement[bool]:
    need = (len(terms) + 1) // 2
    found: ColumnElement[int] = literal(0)
    for w in terms:
        found = found + case((contains(dialect, column, f" {w}"), 1), else_=0)
    return and_(or_(*(contains(dialect, column, f" {w}") for w in terms)), found >= need)


def score(
    dialect: str, title: Column[str], text: Column[str], terms: list[str]
) -> ColumnElement[int]:
    parts: list[ColumnElement[int]] = []
    for w in terms:
        parts.append(
            case(
                (contains(dialect, title, f" {w}"), 3),
                (contains(dialect, text, f" {w}"), 1),
                else_=0,
            )
        )
    if len(terms) > 1:
        phrase = " " + " ".join(terms)
        parts.append(
            case(
                (contains(dialect, title, phrase), 5),
                (contains(dialect, text, phrase), 2),
                else_=0,
            )
        )
    total: ColumnElement[int] = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


def scan(dialect: str, terms: list[str], every: bool) -> Select[Any]:
    """``select(Article, score)`` with every term (``every``) or at least half of them,
    best first, archived articles left out: the first search's query."""
    sc = score(dialect, Article.title_text, Article.search_text, terms).label("score")
    where = (
        all_words(dialect, Article.search_text, terms)
        if every
        else some_words(dialect, Article.search_text, terms)
    )
    return (
        select(Article, sc)
        .where(Article.archived.is_(False), where)
        .order_by(desc("score"), desc(Article.uses), desc(Article.views), Article.id)
    )
