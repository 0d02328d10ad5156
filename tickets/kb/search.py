"""How the knowledge base is searched: folded words at word starts, ranked in SQL.

Agents type as citizens speak, with or without diacritics ("khai sinh",
"khai sinh cho con", "đăng ký tạm trú", "dang ky tam tru"), often only the
start of a word while the citizen is still talking.  So both the articles and
the query are folded with :func:`core.text.words` (lower case, no accents,
"đ" as "d", punctuation dropped) and every query word must start a word of
the article: the article's folded text is stored padded with spaces
(``" giay khai sinh "``) and a query word ``w`` is looked for as ``" w"``.

Why plain substring search and not FTS5 / a ``tsvector``: the knowledge base
is small (thousands of articles, not millions) and the ranking must be the
same on SQLite and PostgreSQL.  ``instr`` (SQLite) and ``strpos``
(PostgreSQL) over the folded column of 5,000 articles need no extension, no
trigger and no second index to keep in step, and rank identically on both
databases.  Whether they stay inside the 50 ms budget is for
``bench/kb_search.py`` on a quiet machine: on the loaded build machine they
did not (docs-pending/kb.md has the figures); an index of word starts is the
next step if they do not.

Ranking (the same on both): every query word found in the title counts 3,
elsewhere 1; the whole query as a phrase in the title adds 5, elsewhere 2;
then the articles used most for tickets, then opened most.  When no article
has every word, those with at least half of them are offered (best first),
so a question worded differently still gets an answer.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, and_, case, func, literal, or_
from sqlalchemy.sql.elements import ColumnElement as Column

from core.text import words

# the words of a query looked at (the rest is ignored), and the longest word kept
MAX_WORDS = 8
MAX_WORD = 40


def document_text(*parts: str | None) -> str:
    """The folded words of ``parts``, space-separated, with a space at each end."""
    found: list[str] = []
    for part in parts:
        if part:
            found.extend(words(part))
    return f" {' '.join(found)} "


def query_words(query: str) -> list[str]:
    """The folded words of a query, each once, in order, at most :data:`MAX_WORDS`."""
    seen: list[str] = []
    for w in words(query):
        w = w[:MAX_WORD]
        if w not in seen:
            seen.append(w)
    return seen[:MAX_WORDS]


def contains(dialect: str, column: Column[str], needle: str) -> ColumnElement[bool]:
    """``needle`` occurs in ``column`` (case-sensitive: both are folded)."""
    found = func.strpos if dialect == "postgresql" else func.instr
    return found(column, literal(needle)) > 0


def all_words(dialect: str, column: Column[str], terms: Iterable[str]) -> ColumnElement[bool]:
    return and_(*(contains(dialect, column, f" {w}") for w in terms))


def some_words(dialect: str, column: Column[str], terms: list[str]) -> ColumnElement[bool]:
    """At least half the words (rounded up) start words of ``column``: a question worded
    differently still finds its article, one shared word ("giấy") does not."""
    need = (len(terms) + 1) // 2
    found: ColumnElement[int] = literal(0)
    for w in terms:
        found = found + case((contains(dialect, column, f" {w}"), 1), else_=0)
    return and_(or_(*(contains(dialect, column, f" {w}") for w in terms)), found >= need)


def score(
    dialect: str, title: Column[str], text: Column[str], terms: list[str]
) -> ColumnElement[int]:
    """The rank of an article for ``terms`` (see the module's docstring)."""
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
