"""Knowledge-base search over 5,000 articles, on SQLite and PostgreSQL: p99 <= 50 ms.

    .venv/bin/python -m bench.kb_search                       # 5,000 articles, both databases
    .venv/bin/python -m bench.kb_search --articles 5000 --queries 300 --runs 3 --db sqlite

For each database it migrates a fresh one (SQLite in a temporary directory;
PostgreSQL a database of its own, hotline_bench_<random>, on $HOTLINE_TEST_PG
or postgresql://postgres@127.0.0.1:5432/test, dropped at the end) and fills it
with --articles articles written like the starter set (a title of 3 to 8
Vietnamese words, a summary, 4 to 9 steps, documents, fees, time, keywords:
about 1.5 kB each, so the folded text searched is about 7 MB), each with its
first version.  PostgreSQL's tables are then analysed (``VACUUM ANALYZE``), as
autovacuum leaves a live database: its plans depend on those statistics.

Then, over the real code (``tickets.kb.service.KnowledgeBase.search``, as the
agent's workspace calls it through the API: with the search recorded for the
report), it runs --queries queries one after the other, --runs times: what
agents type: one to four words, with and without accents, some cut short
mid-word, one in ten for something no article has.  It prints the median,
p95 and p99 of each run and the median of the runs' p99.

Side by side (the default; ``--no-compare`` times the search alone): each
query is also run through the first search, which scanned every article's
folded text (``tests/tickets/kb_scan.py``, the reference the word index is
tested against), alternating which goes first, so both see the same load.
The machine's load average (1 minute) is printed before and after each run:
on a shared machine the absolute figures move with it, the ratio much less.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime

import psycopg
from alembic import command
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from accounts.identity import Actor
from accounts.models import Role
from core.clock import Clock
from core.db import Database
from core.text import fold
from tests.helpers import alembic_cfg
from tests.tickets.kb_scan import scan
from tickets.kb import search as kbsearch
from tickets.kb.models import Article, ArticlePair, ArticleVersion, ArticleWord
from tickets.kb.schemas import CONTENT
from tickets.kb.service import MAX_LIMIT, KnowledgeBase, search_columns

PG_ADMIN_URL = os.environ.get("HOTLINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 11, 1, tzinfo=UTC)

NOUNS = (
    "khai sinh",
    "khai tử",
    "kết hôn",
    "tạm trú",
    "thường trú",
    "hộ khẩu",
    "căn cước",
    "hộ chiếu",
    "giấy phép xây dựng",
    "quyền sử dụng đất",
    "sổ đỏ",
    "hộ kinh doanh",
    "chứng thực",
    "bản sao",
    "lý lịch tư pháp",
    "trợ cấp",
    "bảo hiểm y tế",
    "bảo hiểm xã hội",
    "thuế thu nhập",
    "lệ phí trước bạ",
    "đăng kiểm",
    "giấy phép lái xe",
    "biển số xe",
    "điện sinh hoạt",
    "nước sạch",
    "vỉa hè",
    "quảng cáo",
    "an toàn thực phẩm",
    "nhập học",
    "chuyển trường",
    "người khuyết tật",
    "hộ nghèo",
    "nhà ở xã hội",
    "thừa kế",
    "tặng cho",
    "cải chính hộ tịch",
    "nhận con nuôi",
    "giám hộ",
    "xác nhận cư trú",
    "phòng cháy",
)
VERBS = ("đăng ký", "cấp", "cấp lại", "đổi", "gia hạn", "xác nhận", "điều chỉnh", "hủy", "xin")
WHO = (
    "cho con",
    "cho người cao tuổi",
    "cho người nước ngoài",
    "lần đầu",
    "trực tuyến",
    "tại phường",
    "tại quận",
    "khi mất giấy tờ",
    "cho hộ gia đình",
    "cho doanh nghiệp",
)
FILLER = (
    "Người dân nộp hồ sơ tại bộ phận một cửa của ủy ban nhân dân phường xã hoặc trực tuyến "
    "trên cổng dịch vụ công. Cán bộ tiếp nhận kiểm tra thành phần hồ sơ, hướng dẫn bổ sung "
    "nếu thiếu, viết giấy biên nhận hẹn ngày trả kết quả. Kết quả được trả trực tiếp hoặc "
    "qua dịch vụ bưu chính công ích theo yêu cầu."
).split()


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(FILLER) for _ in range(n)).capitalize() + "."


def articles(n: int, seed: int = 1022) -> list[dict[str, object]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        noun = rng.choice(NOUNS)
        title = f"{rng.choice(VERBS).capitalize()} {noun} {rng.choice(WHO)}"
        steps = "\n".join(
            f"{k}. {_sentence(rng, rng.randint(12, 22))}" for k in range(1, rng.randint(5, 10))
        )
        out.append(
            {
                "code": f"bai-{i}",
                "title": title,
                "summary": f"Thủ tục {noun}. " + _sentence(rng, 20),
                "steps": steps,
                "documents": f"Tờ khai {noun}; " + _sentence(rng, 25),
                "fees": rng.choice(("Miễn phí", "50.000 đồng", "Theo quy định của HĐND")),
                "processing_time": f"{rng.randint(1, 30)} ngày làm việc",
                "agency_id": None,
                "templates": f"Tờ khai {noun} | https://dichvucong.gov.vn/{i}",
                "keywords": f"{noun}, {rng.choice(NOUNS)}, {rng.choice(VERBS)} {noun}",
            }
        )
    return out


def queries(n: int, seed: int = 115) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.1:
            q = rng.choice(("cấp phép nuôi chó", "đổi tên đường phố", "xin visa du học mỹ"))
        else:
            words = f"{rng.choice(VERBS)} {rng.choice(NOUNS)} {rng.choice(WHO)}".split()
            start = rng.randint(0, max(0, len(words) - 2))
            q = " ".join(words[start : start + rng.randint(1, 4)])
            if kind < 0.3:
                q = q[: max(2, len(q) - rng.randint(1, 3))]  # cut short mid-word
        out.append(fold(q) if rng.random() < 0.5 else q)  # half typed without accents
    return out


async def fill(url: str, items: list[dict[str, object]]) -> None:
    db = Database(url)
    try:
        async with db.session() as s:
            rows = [
                {
                    **item,
                    **search_columns(item),
                    "example": False,
                    "archived": False,
                    "version": 1,
                    "uses": 0,
                    "views": 0,
                    "created_at": T0,
                    "updated_at": T0,
                }
                for item in items
            ]
            await s.execute(insert(Article), rows)
        async with db.session() as s:
            ids = dict(
                (
                    await s.execute(
                        Article.__table__.select().with_only_columns(Article.code, Article.id)
                    )
                ).all()
            )
            await s.execute(
                insert(ArticleVersion),
                [
                    {
                        "article_id": ids[item["code"]],
                        "version": 1,
                        **{k: item[k] for k in CONTENT},
                        "archived": False,
                        "edited_by": None,
                        "edited_by_name": "bench",
                        "edited_at": T0,
                    }
                    for item in items
                ],
            )
        async with db.session() as s:
            words = []
            pairs = []
            for item in items:
                cols = search_columns(item)
                words += kbsearch.word_rows(
                    ids[item["code"]], cols["title_text"], cols["search_text"]
                )
                pairs += kbsearch.pair_rows(
                    ids[item["code"]], cols["title_text"], cols["search_text"]
                )
            await s.execute(insert(ArticleWord), words)
            await s.execute(insert(ArticlePair), pairs)
    finally:
        await db.close()


async def scan_search(kb: KnowledgeBase, query: str, actor: Actor, record: bool) -> int:
    """The first search (every article's text scanned), recorded as the real one is."""
    terms = kbsearch.query_words(query)
    if not terms:
        return 0
    async with kb.db.session() as s:
        rows = (await s.execute(scan(kb.dialect, terms, True).limit(10))).all()
        if not rows and len(terms) > 1:
            rows = (await s.execute(scan(kb.dialect, terms, False).limit(10))).all()
        if record:
            await kb._record(s, actor, query, len(rows))
    return len(rows)


async def time_searches(
    url: str, qs: list[str], runs: int, record: bool = True, compare: bool = True
) -> list[dict[str, object]]:
    """Per run: the index search's times (``index``), the scan's (``scan``, when
    comparing) and the load average before and after."""
    assert MAX_LIMIT >= 10
    db = Database(url)
    kb = KnowledgeBase(db, Clock())
    agents = [Actor(id=None, name=f"agent{i}", role=Role.AGENT) for i in range(5)]
    results: list[dict[str, object]] = []
    try:
        for q in qs[:20]:  # warm-up: connections, plans, caches
            await kb.search(q, actor=agents[0])
            if compare:
                await scan_search(kb, q, agents[0], record)
        for _ in range(runs):
            times: dict[str, list[float]] = {"index": [], "scan": []}
            load_before = os.getloadavg()[0]
            for i, q in enumerate(qs):
                actor = agents[i % len(agents)]
                order = ("index", "scan") if i % 2 == 0 else ("scan", "index")
                for which in order:
                    if which == "scan" and not compare:
                        continue
                    t = time.perf_counter()
                    if which == "index":
                        await kb.search(q, actor=actor, record=record)
                    else:
                        await scan_search(kb, q, actor, record)
                    times[which].append(time.perf_counter() - t)
            results.append({**times, "load": (load_before, os.getloadavg()[0])})
    finally:
        await db.close()
    return results


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", type=int, default=5000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument(
        "--no-record", action="store_true", help="time the search alone (no row for the report)"
    )
    ap.add_argument(
        "--no-compare", action="store_true", help="time the word index alone, not the old scan"
    )
    args = ap.parse_args()
    items = articles(args.articles)
    size = sum(len(search_columns(i)["search_text"]) for i in items)
    print(f"{len(items)} articles, {size / 1e6:.1f} MB of folded text searched")
    qs = queries(args.queries)
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    summary: dict[tuple[str, str], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            name = None
            if kind == "sqlite":
                url = f"sqlite:///{tmp}/bench.db"
            else:
                name = f"hotline_bench_{uuid.uuid4().hex[:8]}"
                with psycopg.connect(PG_ADMIN_URL, autocommit=True) as con:
                    con.execute(f'CREATE DATABASE "{name}"')
                url = (
                    make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
                )
            try:
                command.upgrade(alembic_cfg(url), "head")
                asyncio.run(fill(url, items))
                if name:
                    # as a live database is: autovacuum analyses a table soon after
                    # it changes this much, and the plans depend on those statistics
                    with psycopg.connect(url, autocommit=True) as con:
                        con.execute("VACUUM ANALYZE")
                # the filled file on disk first: the searches' commits (recorded) would
                # otherwise wait behind the writing back of the fill's pages
                os.sync()
                runs = asyncio.run(
                    time_searches(url, qs, args.runs, not args.no_record, not args.no_compare)
                )
            finally:
                if name:
                    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as con:
                        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            for n, run in enumerate(runs, 1):
                before, after = run["load"]  # type: ignore[misc]
                print(f"  {kind:10s} run {n} (load average {before:.1f} -> {after:.1f}):")
                for which in ("index", "scan"):
                    times = run[which]  # type: ignore[assignment]
                    if not times:
                        continue
                    ms = [x * 1000 for x in times]
                    print(
                        f"    {which:5s} median {statistics.median(ms):6.1f} ms, "
                        f"p95 {pct(ms, 95):6.1f} ms, p99 {pct(ms, 99):6.1f} ms, "
                        f"max {max(ms):6.1f} ms"
                    )
            for which in ("index", "scan"):
                if runs[0][which]:
                    summary[(kind, which)] = (
                        statistics.median(statistics.median(r[which]) for r in runs),  # type: ignore[arg-type]
                        statistics.median(pct(r[which], 99) for r in runs),  # type: ignore[arg-type]
                    )
    print(
        f"\nmedian of {args.runs} runs of {args.queries} queries (target p99 <= 50 ms), "
        f"{os.cpu_count()} CPUs, load average now {os.getloadavg()[0]:.1f}:"
    )
    for (kind, which), (median, p99) in summary.items():
        verdict = "ok" if p99 <= 0.050 else "OVER"
        print(
            f"  {kind:10s} {which:5s} median {median * 1000:6.1f} ms, p99 {p99 * 1000:6.1f} ms  "
            f"{verdict}"
        )


if __name__ == "__main__":
    main()
