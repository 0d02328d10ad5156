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

The phrase bonus.  The query as a phrase is ``" w1 w2 ... wn"`` in the padded
text: every word but the last is a whole word of the article, the last the start
of the word that follows.  Looking for it in the text of every article having all
the words cost up to 50 ms for short common queries ("so d": thousands of articles
have "so" and a word starting with "d").  So each pair of consecutive words of
an article is kept once in ``kb_pairs`` (with whether the title has it): for two
words the pair ``(w1, word starting with w2)`` is the phrase itself (in the title
5, elsewhere 2) and no text is read; for more, only the articles having every
pair of the query (the last by its start) can have the phrase, and only their
text is looked at.

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
from tickets.kb.models import WORD_MAX, Article, ArticlePair, ArticleWord

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


def pair_rows(article_id: int, title_text: str, search_text: str) -> list[dict[str, Any]]:
    """The ``kb_pairs`` rows of an article: each pair of consecutive words of its
    ``search_text`` once (each word cut to :data:`WORD_MAX`), marked when the title has
    the two words one after the other."""

    def pairs(text: str) -> list[tuple[str, str]]:
        cut = [w[:WORD_MAX] for w in text.split()]
        return list(zip(cut, cut[1:], strict=False))

    in_title = set(pairs(title_text))
    return [
        {"article_id": article_id, "word": w, "next_word": n, "title": (w, n) in in_title}
        for w, n in dict.fromkeys(pairs(search_text))
    ]


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
    word of the title starts with it, else 1); the phrase bonus comes from
    ``kb_pairs`` (:func:`phrase_bonus`).
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
    query = select(Article.id).join(found, found.c.article_id == Article.id)
    if len(terms) > 1:
        pairs = phrase_pairs(terms)
        query = query.outerjoin(pairs, pairs.c.article_id == Article.id)
        score = score + phrase_bonus(dialect, terms, pairs)
    query = query.add_columns(score.label("score")).order_by(
        desc("score"), desc(Article.uses), desc(Article.views), Article.id
    )
    if not archived:
        query = query.where(Article.archived.is_(False))
    return query


def phrase_pairs(terms: list[str]) -> Any:
    """The articles having any pair of consecutive ``terms`` one after the other (the
    last term as the start of a word), with ``pairs``: how many of them, and ``title``:
    1 when the title has every one it has (:func:`phrase_bonus` asks for them all)."""
    per_pair = []
    for i, (w, n) in enumerate(zip(terms, terms[1:], strict=False)):
        if i == len(terms) - 2:
            low, high = prefix_range(n)
            second = [ArticlePair.next_word >= low, ArticlePair.next_word < high]
        else:
            second = [ArticlePair.next_word == n]
        per_pair.append(
            select(
                ArticlePair.article_id.label("article_id"),
                func.max(case((ArticlePair.title, 1), else_=0)).label("title"),
            )
            .where(ArticlePair.word == w, *second)
            .group_by(ArticlePair.article_id)
        )
    every = union_all(*per_pair).subquery("every_pair")
    # Every article with any of the pairs, with how many it has (``pairs``): the bonus
    # asks for all of them.  Filtering here (``HAVING count(*) = n``) would be right
    # too, but PostgreSQL estimates such a filter at one row whatever its statistics,
    # and joined the candidates to it by a nested loop: 600 ms for "sổ đ" once the
    # tables were analysed, against 20 ms joined by a hash as now.
    return (
        select(
            every.c.article_id,
            func.count().label("pairs"),
            func.min(every.c.title).label("title"),
        )
        .group_by(every.c.article_id)
        .subquery("pairs")
    )


def phrase_bonus(dialect: str, terms: list[str], pairs: Any) -> ColumnElement[int]:
    """The whole query as a phrase in the title: 5, elsewhere: 2 (``pairs``: the
    :func:`phrase_pairs` of ``terms``, joined to the articles).

    Two terms: the pair is the phrase.  More: an article without every pair (fewer
    than ``len(terms) - 1``) cannot have the phrase, one with them might (the pairs
    in different places), so only its text is looked at; its title only when the
    title has every pair.
    """
    if len(terms) == 2:
        return case(
            (pairs.c.article_id.is_(None), 0),
            (pairs.c.title == 1, 5),
            else_=2,
        )
    phrase = " " + " ".join(terms)
    return case(
        (pairs.c.article_id.is_(None), 0),
        (pairs.c.pairs < len(terms) - 1, 0),  # cannot have it: its text is not read
        ((pairs.c.title == 1) & contains(dialect, Article.title_text, phrase), 5),
        (contains(dialect, Article.search_text, phrase), 2),
        else_=0,
    )
