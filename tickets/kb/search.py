"""How the knowledge base is searched: folded words at word starts, ranked in SQL.

Agents type as citizens speak, with or without diacritics ("khai sinh",
"khai sinh cho con", "đăng ký tạm trú", "dang ky tam tru"), often only the
start of a word while the citizen is still talking.  So both the articles and
the query are folded with :func:`core.text.words` (lower case, no accents,
"đ" as "d", punctuation dropped) and every query word must start a word of
the article: the article's folded text is stored padded with spaces
(``" giay khai sinh "``) and a query word ``w`` is looked for as ``" w"``.

How it is found fast.  Every word of an article's folded text is kept once
in ``kb_words`` (with whether it is in the title), and a query word ``w`` is
looked up there as the range of words starting with it (``word >= 'kh' AND
word < 'ki'``, compared byte by byte: collation "C" on PostgreSQL, SQLite's
own), which the index ``(word, article_id, title)`` answers without reading an
article.  The articles found for every word (or, failing that, for at least
half of them) are scored from the same rows; only they are then looked at, for
the phrase bonus and the tie-breaks, and only the few kept are read whole.
The first version compared the query with every article's whole text
(``instr``/``strpos`` over 7 MB for 5,000 articles) and missed the 50 ms
budget under load; ``bench/kb_search.py`` measures both side by side (README
"Procedures" has the figures).  The word index was chosen over SQLite FTS5 or
a PostgreSQL ``tsvector``: it is one plain table, written in the article's own
transaction, needs no extension, and finds and ranks **identically** on both
databases (a test compares it with the old full-text scan, kept in
``tests/tickets/kb_scan.py``, over many queries).

Ranking (the same on both): every query word found in the title counts 3,
elsewhere 1; the whole query as a phrase in the title adds 5, elsewhere 2;
then the articles used most for tickets, then opened most.  When no article
has every word, those with at least half of them are offered (best first),
so a question worded differently still gets an answer.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, case, desc, func, literal, select, union_all
from sqlalchemy.sql.elements import ColumnElement as Column

from core.text import words
from tickets.kb.models import WORD_MAX, Article, ArticleWord

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


def word_rows(article_id: int, title_text: str, search_text: str) -> list[dict[str, Any]]:
    """The ``kb_words`` rows of an article: each word of its ``search_text`` once (cut
    to :data:`WORD_MAX`), marked when the title has it."""
    in_title = {w[:WORD_MAX] for w in title_text.split()}
    unique = dict.fromkeys(w[:WORD_MAX] for w in search_text.split())
    return [{"article_id": article_id, "word": w, "title": w in in_title} for w in unique]


def prefix_range(prefix: str) -> tuple[str, str]:
    """``(low, high)``: the words starting with ``prefix`` are those ``>= low`` and
    ``< high`` in code-point (UTF-8 byte) order."""
    last = ord(prefix[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # surrogates are no characters: skip past them
        last = 0xE000
    return prefix, prefix[:-1] + chr(last)


def contains(dialect: str, column: Column[str], needle: str) -> ColumnElement[bool]:
    """``needle`` occurs in ``column`` (case-sensitive: both are folded)."""
    found = func.strpos if dialect == "postgresql" else func.instr
    return found(column, literal(needle)) > 0


def ranked(dialect: str, terms: list[str], need: int, *, archived: bool = False) -> Select[Any]:
    """Articles with at least ``need`` of ``terms`` starting their words, with their
    score (the module's docstring), best first: ``select(Article.id, score)`` (the
    caller reads the few articles it keeps: sorting thousands of candidates carries
    their ids and figures, not their texts).

    Each term's articles come from ``kb_words`` (one row per article: 3 points if a
    word of the title starts with it, else 1); an article found for every term also
    gets the phrase bonus, read from its text.
    """
    per_term = []
    for i, w in enumerate(terms):
        low, high = prefix_range(w)
        per_term.append(
            select(
                ArticleWord.article_id.label("article_id"),
                literal(i).label("term"),
                func.max(case((ArticleWord.title, 3), else_=1)).label("points"),
            )
            .where(ArticleWord.word >= low, ArticleWord.word < high)
            .group_by(ArticleWord.article_id)
        )
    hits = union_all(*per_term).subquery("hits")
    found = (
        select(
            hits.c.article_id,
            func.count().label("found"),
            func.sum(hits.c.points).label("points"),
        )
        .group_by(hits.c.article_id)
        .having(func.count() >= need)
        .subquery("found")
    )
    score: ColumnElement[Any] = found.c.points
    if len(terms) > 1:
        # the whole query as a phrase: only an article with every word can have it
        phrase = " " + " ".join(terms)
        score = score + case(
            (found.c.found < len(terms), 0),
            (contains(dialect, Article.title_text, phrase), 5),
            (contains(dialect, Article.search_text, phrase), 2),
            else_=0,
        )
    query = (
        select(Article.id, score.label("score"))
        .join(found, found.c.article_id == Article.id)
        .order_by(desc("score"), desc(Article.uses), desc(Article.views), Article.id)
    )
    if not archived:
        query = query.where(Article.archived.is_(False))
    return query
