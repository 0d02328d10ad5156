"""The knowledge base's word index on real SQLite and PostgreSQL: it finds and ranks
exactly as the first search (every article's text scanned, tests/tickets/kb_scan.py)
over many queries (many of them phrases of the articles, or nearly), after creating,
editing and archiving articles through the service; and migrations 0031 and 0039 fill
the word and word-pair indexes from articles written before them."""

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
from tickets.kb.models import Article, ArticlePair, ArticleWord
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


def phrases(made: list[Article], rng: random.Random) -> list[str]:
    """Queries that are, or nearly are, phrases of the articles: runs of 2 to 4
    consecutive words (the last one sometimes cut short), some starting in the title
    and ending after it, and the same words out of order or with one left out, whose
    pairs an article may have in different places but not one after the other."""
    out = ["so d", "bien so x", "giay to", "nhan con", "khai tu", "ho so ho", "d", "x"]
    for a in rng.sample(made, 30):
        title, text = a.title_text.split(), a.search_text.split()
        for start in (len(title) - 2, len(title) - 1, rng.randrange(len(text) - 4)):
            run = text[start : start + rng.randint(2, 4)]
            if rng.random() < 0.4:
                run[-1] = run[-1][: rng.randint(1, len(run[-1]))]
            out.append(" ".join(run))
            shuffled = run[:]
            rng.shuffle(shuffled)
            out.append(" ".join(shuffled))
            if len(run) > 2:
                out.append(" ".join(run[:1] + run[2:]))
    return out


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
    asked += phrases(made, rng)
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


async def test_each_pair_of_words_is_indexed_once_with_its_title_mark(kb):  # noqa: F811
    a = await kb.create(
        kb.admin,
        {
            "title": "Đăng ký khai sinh",
            "steps": "Nộp tờ khai sinh; khai sinh đúng.",
            "keywords": "làm giấy",
        },
    )

    async def pairs(article_id: int) -> dict[tuple[str, str], bool]:
        async with kb.db.session() as s:
            rows = (
                await s.execute(
                    ArticlePair.__table__.select().where(ArticlePair.article_id == article_id)
                )
            ).all()
        found = {(r.word, r.next_word): r.title for r in rows}
        assert len(rows) == len(found)
        return found

    found = await pairs(a.id)
    assert found[("dang", "ky")] and found[("ky", "khai")] and found[("khai", "sinh")]
    # the title's last word and the keywords' first are consecutive in the text only
    assert not found[("sinh", "lam")] and not found[("to", "khai")]
    assert ("lam", "giay") in found and ("sinh", "dang") not in found
    a = await kb.update(kb.admin, a.id, a.version, {"title": "Làm giấy khai sinh"})
    found = await pairs(a.id)
    assert ("dang", "ky") not in found and found[("lam", "giay")] and found[("giay", "khai")]
    assert not found[("sinh", "lam")]


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


async def test_0039_pairs_the_words_of_the_articles_written_before_it(database_url):
    cfg = alembic_cfg(database_url)
    await asyncio.to_thread(command.upgrade, cfg, "0038")
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO kb_articles (code, title, steps, version, created_at, updated_at,"
                    " search_text, title_text) VALUES ('khai-sinh', 'Đăng ký khai sinh',"
                    " '1. Nộp.', 1, :t, :t, ' dang ky khai sinh nop khai sinh ',"
                    " ' dang ky khai sinh ')"
                ),
                {"t": T0},
            )
        await asyncio.to_thread(command.upgrade, cfg, "0039")
        with engine.begin() as c:
            rows = c.execute(
                text("SELECT word, next_word, title FROM kb_pairs ORDER BY word, next_word")
            ).all()
        assert [(w, n, bool(t)) for w, n, t in rows] == [
            ("dang", "ky", True),
            ("khai", "sinh", True),
            ("ky", "khai", True),
            ("nop", "khai", False),
            ("sinh", "nop", False),
        ]
        await asyncio.to_thread(command.downgrade, cfg, "0038")
        with engine.begin() as c:
            assert c.execute(text("SELECT count(*) FROM kb_articles")).scalar_one() == 1
        await asyncio.to_thread(command.upgrade, cfg, "head")
        with engine.begin() as c:
            assert c.execute(text("SELECT count(*) FROM kb_pairs")).scalar_one() == 5
    finally:
        engine.dispose()
