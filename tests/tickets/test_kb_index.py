"""The knowledge base's word index on real SQLite and PostgreSQL: it finds and ranks
exactly as the first search (every article's text scanned, tests/tickets/kb_scan.py)
over many queries, after creating, editing and archiving articles through the service;
and migration 0031 fills it from articles written before it."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import create_engine, text, update

from bench.kb_search import articles, queries
from core.db import sync_url
from tests.helpers import alembic_cfg
from tests.tickets.kb_scan import scan
from tests.tickets.test_kb import kb  # noqa: F401 - the fixture
from tickets.kb import search as kbsearch
from tickets.kb.models import Article, ArticleWord
from tickets.kb.service import KnowledgeBase

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


async def reference(service: KnowledgeBase, query: str, limit: int) -> list[tuple[int, int]]:
    terms = kbsearch.query_words(query)
    if not terms:
        return []
    async with service.db.session() as s:
        rows = (await s.execute(scan(service.dialect, terms, True).limit(limit))).all()
        if not rows and len(terms) > 1:
            rows = (await s.execute(scan(service.dialect, terms, False).limit(limit))).all()
    return [(r[0].id, int(r[1])) for r in rows]


async def test_the_index_finds_and_ranks_as_the_full_scan(kb):  # noqa: F811
    rng = random.Random(7)
    made = []
    for item in articles(80, seed=3):
        data = {k: v for k, v in item.items() if k not in ("code", "agency_id")}
        made.append(await kb.create(kb.admin, data))
    # edits change the words (a new title), archiving takes one out of the search
    for a in made[:10]:
        await kb.update(kb.admin, a.id, a.version, {"title": f"{a.title} khẩn cấp"})
    await kb.update(kb.admin, made[10].id, made[10].version, {"archived": True})
    # uses and views break the ties
    async with kb.db.session() as s:
        for a in made:
            await s.execute(
                update(Article)
                .where(Article.id == a.id)
                .values(uses=rng.randint(0, 3), views=rng.randint(0, 5))
            )
    asked = queries(150, seed=11) + [
        "khẩn",
        "khan cap",
        "đăng ký khai sinh cho con",
        "dang ky tam tru lan dau",
        "cấp lại hộ chiếu khi mất giấy tờ",
        "xin visa du học mỹ nước ngoài",  # only some words: the fallback
        "a",
        "%_",
        "ĐĂNG KÝ",
    ]
    compared = found = 0
    for q in asked:
        for limit in (10, 50):
            want = await reference(kb, q, limit)
            got = await kb.search(q, limit=limit, record=False)
            assert [(h.article.id, h.score) for h in got.hits] == want, q
            compared += 1
            found += bool(want)
    assert compared == 2 * len(asked) and found > len(asked)  # most queries find something
    # an archived article has no hit, but its words stay for the admins' search
    archived = await kb.search(made[10].title, record=False)
    assert made[10].id not in [h.article.id for h in archived.hits]
    with_archived = await kb.search(made[10].title, record=False, archived=True)
    assert made[10].id in [h.article.id for h in with_archived.hits]


async def test_each_word_is_indexed_once_with_its_title_mark(kb):  # noqa: F811
    a = await kb.create(
        kb.admin,
        {
            "title": "Đăng ký khai sinh",
            "steps": "Nộp tờ khai sinh; khai đúng.",
            "keywords": "làm giấy",
        },
    )
    async with kb.db.session() as s:
        rows = (
            await s.execute(ArticleWord.__table__.select().where(ArticleWord.article_id == a.id))
        ).all()
    words = {r.word: r.title for r in rows}
    assert len(rows) == len(words)
    assert words["dang"] and words["khai"] and words["sinh"]
    assert not words["lam"] and not words["nop"] and not words["dung"]
    a = await kb.update(kb.admin, a.id, a.version, {"title": "Làm giấy khai sinh"})
    async with kb.db.session() as s:
        rows = (
            await s.execute(ArticleWord.__table__.select().where(ArticleWord.article_id == a.id))
        ).all()
    words = {r.word: r.title for r in rows}
    assert "dang" not in words and words["lam"] and words["giay"]


def test_the_prefix_range_is_exactly_the_words_starting_with_it():
    low, high = kbsearch.prefix_range("kh")
    assert (low, high) == ("kh", "ki")
    for w in ("kh", "khai", "khz", "kh\U0010ffff"):
        assert low <= w < high, w
    for w in ("k", "kg", "ki", "kia", "l"):
        assert not low <= w < high, w
    # the code point after U+D7FF is a surrogate, which no text holds
    assert kbsearch.prefix_range("\ud7ff")[1] == "\ue000"


async def test_0031_indexes_the_articles_written_before_it(database_url):
    cfg = alembic_cfg(database_url)
    await asyncio.to_thread(command.upgrade, cfg, "0030")
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO kb_articles (code, title, steps, version, created_at, updated_at,"
                    " search_text, title_text) VALUES ('khai-sinh', 'Đăng ký khai sinh',"
                    " '1. Nộp.', 1, :t, :t, ' dang ky khai sinh nop khai ',"
                    " ' dang ky khai sinh ')"
                ),
                {"t": T0},
            )
        await asyncio.to_thread(command.upgrade, cfg, "0031")
        with engine.begin() as c:
            rows = c.execute(text("SELECT word, title FROM kb_words ORDER BY word")).all()
        assert [(w, bool(t)) for w, t in rows] == [
            ("dang", True),
            ("khai", True),
            ("ky", True),
            ("nop", False),
            ("sinh", True),
        ]
        await asyncio.to_thread(command.downgrade, cfg, "0030")
        await asyncio.to_thread(command.upgrade, cfg, "head")
    finally:
        engine.dispose()
