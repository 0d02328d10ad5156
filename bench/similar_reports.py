"""Repeat-report suggestions over 1,000,000 tickets, on SQLite and PostgreSQL: p99 <= 100 ms.

    .venv/bin/python -m bench.similar_reports                      # 1,000,000 tickets, both
    .venv/bin/python -m bench.similar_reports --tickets 100000 --db sqlite --runs 1

For each database it migrates a fresh one (SQLite in a temporary directory;
PostgreSQL a database of its own, hotline_bench_<random>, on $HOTLINE_TEST_PG or
postgresql://postgres@127.0.0.1:5432/test, dropped at the end) and fills it in
bulk (not through the service: a million creations would take hours): --tickets
reports spread evenly over the last --days days (ids growing with time, as the
service writes them), written as citizens report: a problem of the topic ("Ngập
nước sâu", "Cây xanh gãy đổ", ...), a street of ~120, a ward and a district, a
detail or two, half of them without diacritics (SMS), phones from a pool of a
third as many numbers; each with its index rows (tickets.terms, as the service
writes them).  SQLite through sqlite3's executemany in large transactions,
PostgreSQL with COPY (the index key added after the load, then VACUUM ANALYZE).

Then, over the real code (``tickets.repeats.RepeatService.suggest``, as the
panel's form asks it while the agent types), it runs --queries drafts one after
the other, --runs times: 60% a new report of a matter already reported in the
window (its words reordered or cut, with or without diacritics, another phone),
25% a report of something new, 15% what the agent has typed so far (the first
two to five words) with the caller's number.  It prints the median, p95 and p99
of each run, the median of the runs' p99, and how often the earlier report of a
repeat was among the suggestions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from alembic import command
from sqlalchemy.engine import make_url

from accounts.identity import Actor
from accounts.models import Role
from core.clock import FakeClock
from core.db import Database
from core.text import fold
from tests.helpers import alembic_cfg, settings_in
from tickets.repeats import Draft, RepeatService
from tickets.terms import terms

PG_ADMIN_URL = os.environ.get("HOTLINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
T_END = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)

PROBLEMS = {
    "flooding": (
        "Ngập nước sâu",
        "Nước ngập ngang bánh xe",
        "Triều cường gây ngập",
        "Mưa lớn gây ngập úng",
        "Cống thoát nước bị nghẹt gây ngập",
    ),
    "trees": ("Cây xanh gãy đổ", "Cây đổ chắn ngang đường", "Nhánh cây có nguy cơ rơi"),
    "electricity": (
        "Mất điện kéo dài",
        "Đèn đường không sáng",
        "Dây điện bị đứt lơ lửng",
        "Trụ điện nghiêng",
    ),
    "water": ("Mất nước sinh hoạt", "Vỡ ống nước", "Nước sinh hoạt có mùi hôi"),
    "traffic": (
        "Ùn tắc giao thông kéo dài",
        "Đèn tín hiệu giao thông hỏng",
        "Ổ gà lớn giữa đường",
        "Sụp lún mặt đường",
    ),
    "urban": ("Lấn chiếm vỉa hè buôn bán", "Xây dựng không phép", "Đào đường không hoàn trả"),
    "pollution": ("Rác thải tập kết gây mùi hôi", "Tiếng ồn karaoke về đêm", "Khói bụi từ xưởng"),
    "buses": ("Xe buýt không dừng đón khách", "Tài xế xe buýt chạy ẩu"),
    "security": ("Tụ tập đua xe trái phép", "Trộm cắp xe máy", "Đánh nhau gây mất trật tự"),
}
STREETS = """Nguyễn Huệ|Lê Lợi|Hai Bà Trưng|Điện Biên Phủ|Cách Mạng Tháng Tám|Nguyễn Thị Minh Khai|
Võ Văn Tần|Pasteur|Nam Kỳ Khởi Nghĩa|Trần Hưng Đạo|Nguyễn Trãi|Lý Thường Kiệt|3 Tháng 2|
Nguyễn Văn Cừ|Phạm Ngũ Lão|Bùi Viện|Đề Thám|Cống Quỳnh|Nguyễn Cư Trinh|Trần Đình Xu|
Nguyễn Hữu Cảnh|Tôn Đức Thắng|Hàm Nghi|Lê Duẩn|Nguyễn Đình Chiểu|Trần Quốc Thảo|Bà Huyện Thanh Quan|
Lê Văn Sỹ|Hoàng Văn Thụ|Cộng Hòa|Trường Chinh|Âu Cơ|Lũy Bán Bích|Tân Kỳ Tân Quý|Kinh Dương Vương|
Hồng Bàng|An Dương Vương|Nguyễn Văn Linh|Nguyễn Hữu Thọ|Huỳnh Tấn Phát|Lê Văn Lương|Phạm Hùng|
Quang Trung|Nguyễn Oanh|Phan Văn Trị|Lê Quang Định|Bạch Đằng|Xô Viết Nghệ Tĩnh|Đinh Bộ Lĩnh|
Nơ Trang Long|Phan Đăng Lưu|Hoàng Hoa Thám|Nguyễn Kiệm|Phạm Văn Đồng|Kha Vạn Cân|Võ Văn Ngân|
Lê Văn Việt|Đỗ Xuân Hợp|Mai Chí Thọ|Lương Định Của|Trần Não|Song Hành|Xa Lộ Hà Nội|Tô Ngọc Vân|
Nguyễn Ảnh Thủ|Lê Trọng Tấn|Tây Thạnh|Bình Long|Tân Sơn Nhì|Độc Lập|Gò Dầu|Hòa Bình|
Lạc Long Quân|Ba Tháng Hai|Minh Phụng|Hậu Giang|Tháp Mười|Chợ Lớn|Hải Thượng Lãn Ông|
Châu Văn Liêm|Nguyễn Tri Phương|Ngô Gia Tự|Sư Vạn Hạnh|Thành Thái|Tô Hiến Thành|Bắc Hải|
Trần Xuân Soạn|Lâm Văn Bền|Nguyễn Thị Thập|Huỳnh Văn Bánh|Phan Xích Long|Nguyễn Văn Trỗi|
Trần Huy Liệu|Đặng Văn Ngữ|Nguyễn Trọng Tuyển|Phổ Quang|Bến Vân Đồn|Khánh Hội|Tôn Thất Thuyết|
Đoàn Văn Bơ|Hoàng Diệu|Nguyễn Tất Thành|Võ Văn Kiệt|Lê Hồng Phong|Sư Thiện Chiếu|Kỳ Đồng|
Rạch Bùng Binh|Trần Văn Đang|Cao Thắng|Nguyễn Thiện Thuật|Bàn Cờ|Vườn Chuối|Lý Chính Thắng|
Trương Định|Nguyễn Thượng Hiền|Điện Biên|Ung Văn Khiêm|Nguyễn Xí|Nguyễn Duy Trinh""".replace(
    "\n", ""
).split("|")
WARDS = [f"phường {n}" for n in range(1, 16)] + [
    "phường Bến Nghé",
    "phường Bến Thành",
    "phường Đa Kao",
    "phường Tân Định",
    "phường Thảo Điền",
    "phường An Phú",
    "phường Hiệp Phú",
    "phường Linh Trung",
]
DISTRICTS = [f"quận {n}" for n in range(1, 13)] + [
    "quận Bình Thạnh",
    "quận Gò Vấp",
    "quận Phú Nhuận",
    "quận Tân Bình",
    "quận Tân Phú",
    "quận Bình Tân",
    "thành phố Thủ Đức",
    "huyện Bình Chánh",
    "huyện Nhà Bè",
    "huyện Hóc Môn",
]
DETAILS = (
    "từ sáng nay",
    "đã nhiều ngày chưa được xử lý",
    "ảnh hưởng người đi đường",
    "đề nghị cơ quan chức năng xử lý",
    "nguy hiểm cho trẻ em đi học",
    "người dân rất bức xúc",
    "tình trạng kéo dài cả tuần",
    "gây mất an toàn giao thông",
    "xin cho người xuống kiểm tra",
    "đã báo phường nhưng chưa thấy",
)
NEW_MATTERS = (
    "Hỏi thủ tục đăng ký khai sinh cho con",
    "Đề nghị lắp thêm camera tại công viên",
    "Chó thả rông cắn người trong hẻm",
    "Quán nhậu lấn chiếm lòng đường đến khuya",
    "Bãi giữ xe thu phí quá quy định",
    "Nhà hoang xuống cấp có nguy cơ sập",
)
TOPICS = list(PROBLEMS)
COLUMNS = (
    "id code number channel citizen_phone citizen_address district domain topic level "
    "description status created_at updated_at version escalations reopens "
    "publish_consent withheld search_text public_text repeats"
).split()


def report(rng: random.Random) -> tuple[str, str, str | None, str]:
    """A generated report: topic, description, address, district."""
    topic = rng.choice(TOPICS)
    street = rng.choice(STREETS)
    ward, district = rng.choice(WARDS), rng.choice(DISTRICTS)
    where = f"đường {street}"
    if rng.random() < 0.3:
        where = f"hẻm {rng.randint(2, 400)} {where}"
    text = f"{rng.choice(PROBLEMS[topic])} tại {where}, {ward}, {district}"
    for _ in range(rng.randint(0, 2)):
        text += f", {rng.choice(DETAILS)}"
    address = f"{rng.randint(1, 300)} {street}" if rng.random() < 0.4 else None
    if rng.random() < 0.5:  # an SMS typed without diacritics
        text = fold(text)
    return topic, text + ".", address, district


def rows(n: int, days: int, seed: int = 1022) -> Iterator[tuple[object, ...]]:
    rng = random.Random(seed)
    start = T_END - timedelta(days=days)
    step = timedelta(days=days) / max(1, n)
    phones = max(1000, n // 3)
    for i in range(1, n + 1):
        topic, text, address, district = report(rng)
        at = start + step * i
        phone = f"09{rng.randrange(phones):08d}"
        yield (
            i,
            f"B{i:07d}",
            f"{i:010d}",
            rng.choice(("phone", "phone", "phone", "sms", "web")),
            phone,
            address,
            district,
            "state",
            topic,
            rng.choice((2, 2, 2, 3, 1)),
            text,
            "forwarded",
            at,
            at,
            1,
            0,
            0,
            False,
            False,
            "",
            "",
            0,
        )


def drafts(n: int, total: int, days: int, window: int, seed: int = 115) -> list[tuple[Draft, int]]:
    """The drafts timed and, for repeats, the id of the report they repeat (else 0)."""
    rng = random.Random(seed)
    made = {r[0]: r for r in rows_sample(total, days, window, n, seed)}
    out: list[tuple[Draft, int]] = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.6 and made:
            tid = rng.choice(list(made))
            r = made[tid]
            words = str(r[10]).rstrip(".").split()
            # the same matter said again: some words dropped, as another citizen says it
            keep = [w for w in words if rng.random() > 0.2] or words
            text = " ".join(keep)
            text = fold(text) if rng.random() < 0.5 else text
            phone = f"08{rng.randrange(10**8):08d}"
            out.append((Draft(text, None, phone, str(r[8]), str(r[6])), tid))
        elif kind < 0.85:
            text = f"{rng.choice(NEW_MATTERS)} ở đường {rng.choice(STREETS)}"
            out.append((Draft(text, None, f"07{rng.randrange(10**8):08d}", "other", None), 0))
        else:
            topic, text, _addr, _district = report(rng)
            cut = " ".join(text.split()[: rng.randint(2, 5)])
            phone = f"09{rng.randrange(max(1000, total // 3)):08d}"
            out.append((Draft(cut, None, phone, topic, None), 0))
    return out


def rows_sample(total: int, days: int, window: int, n: int, seed: int) -> list[tuple[object, ...]]:
    """Some reports of the window (regenerated: the generator is seeded), to repeat."""
    rng = random.Random(seed + 1)
    first = max(1, total - int(total * min(1.0, window / days)) + 1)
    wanted = set(rng.sample(range(first, total + 1), min(n, total - first + 1)))
    return [r for r in rows(total, days) if r[0] in wanted]


# -- filling ------------------------------------------------------------------------------
def _sqlite_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def fill_sqlite(path: str, n: int, days: int, batch: int = 50_000) -> None:
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-1000000")
    marks = ",".join("?" * len(COLUMNS))
    sql = f"INSERT INTO tickets ({','.join(COLUMNS)}) VALUES ({marks})"
    tickets: list[tuple[object, ...]] = []
    words: list[tuple[str, int]] = []

    def flush() -> None:
        con.executemany(sql, tickets)
        con.executemany("INSERT INTO ticket_terms (term, ticket_id) VALUES (?, ?)", words)
        con.commit()
        tickets.clear()
        words.clear()

    for r in rows(n, days):
        row = list(r)
        row[12] = row[13] = _sqlite_time(r[12])  # type: ignore[arg-type]
        tickets.append(tuple(row))
        words.extend((t, r[0]) for t in terms(str(r[10]), r[5]))  # type: ignore[arg-type, misc]
        if len(tickets) >= batch:
            flush()
    flush()
    con.execute("ANALYZE")
    con.commit()
    con.close()


def fill_postgresql(url: str, n: int, days: int) -> None:
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("ALTER TABLE ticket_terms DROP CONSTRAINT pk_ticket_terms")
        con.execute("ALTER TABLE ticket_terms DROP CONSTRAINT fk_ticket_terms_ticket_id_tickets")
        with con.cursor() as cur:
            with cur.copy(f"COPY tickets ({','.join(COLUMNS)}) FROM STDIN") as copy:
                for r in rows(n, days):
                    copy.write_row(r)
            with cur.copy("COPY ticket_terms (term, ticket_id) FROM STDIN") as copy:
                for r in rows(n, days):
                    for t in terms(str(r[10]), r[5]):  # type: ignore[arg-type]
                        copy.write_row((t, r[0]))
        con.execute(
            "ALTER TABLE ticket_terms ADD CONSTRAINT pk_ticket_terms PRIMARY KEY (term, ticket_id)"
        )
        con.execute(
            "ALTER TABLE ticket_terms ADD CONSTRAINT fk_ticket_terms_ticket_id_tickets "
            "FOREIGN KEY (ticket_id) REFERENCES tickets (id)"
        )
        con.execute(f"SELECT setval(pg_get_serial_sequence('tickets', 'id'), {n})")
        con.execute("VACUUM ANALYZE tickets")
        con.execute("VACUUM ANALYZE ticket_terms")


# -- timing -------------------------------------------------------------------------------
async def time_suggestions(
    url: str, qs: list[tuple[Draft, int]], runs: int, window: int
) -> tuple[list[list[float]], float]:
    db = Database(url)
    with tempfile.TemporaryDirectory() as home:
        settings = settings_in(Path(home))
    settings = settings.model_copy(
        update={
            "tickets": settings.tickets.model_copy(update={"repeat_window_days": window}),
        }
    )
    rs = RepeatService(db, settings, FakeClock(T_END + timedelta(minutes=1)), None)  # type: ignore[arg-type]
    agent = Actor(id=None, name="agent", role=Role.AGENT)
    results = []
    found = repeats = 0
    try:
        for d, _ in qs[:20]:  # warm-up: connections, plans, caches
            await rs.suggest(agent, d)
        for run in range(runs):
            times = []
            for d, source in qs:
                t = time.perf_counter()
                got = await rs.suggest(agent, d)
                times.append(time.perf_counter() - t)
                if run == 0 and source:
                    repeats += 1
                    found += any(s.ticket.id == source for s in got)
            results.append(times)
    finally:
        await db.close()
    return results, found / max(1, repeats)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--tickets", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=365, help="the reports are spread over these")
    ap.add_argument("--window", type=int, default=180, help="[tickets] repeat_window_days")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument(
        "--sqlite-file",
        help="keep the SQLite database in this file, and time it again without filling it "
        "when it exists (made with the same --tickets and --days)",
    )
    args = ap.parse_args()
    qs = drafts(args.queries, args.tickets, args.days, args.window)
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    summary = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            name = None
            reuse = False
            if kind == "sqlite":
                path = args.sqlite_file or f"{tmp}/bench.db"
                reuse = bool(args.sqlite_file) and os.path.exists(path)
                url = f"sqlite:///{path}"
            else:
                name = f"hotline_bench_{uuid.uuid4().hex[:8]}"
                with psycopg.connect(PG_ADMIN_URL, autocommit=True) as con:
                    con.execute(f'CREATE DATABASE "{name}"')
                url = (
                    make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
                )
            try:
                if not reuse:
                    command.upgrade(alembic_cfg(url), "head")
                    t = time.perf_counter()
                    if kind == "sqlite":
                        fill_sqlite(path, args.tickets, args.days)
                    else:
                        fill_postgresql(url, args.tickets, args.days)
                    took = time.perf_counter() - t
                    print(f"{kind}: {args.tickets} tickets filled in {took:.0f} s")
                runs, recall = asyncio.run(time_suggestions(url, qs, args.runs, args.window))
            finally:
                if name:
                    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as con:
                        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            for n, times in enumerate(runs, 1):
                print(
                    f"  {kind:10s} run {n}: median {statistics.median(times) * 1000:5.1f} ms, "
                    f"p95 {pct(times, 95) * 1000:5.1f} ms, p99 {pct(times, 99) * 1000:5.1f} ms, "
                    f"max {max(times) * 1000:5.1f} ms"
                )
            print(f"  {kind:10s} the repeated report suggested for {recall:.0%} of the repeats")
            summary[kind] = statistics.median(pct(t, 99) for t in runs)
    print(f"\nmedian p99 over {args.runs} runs of {args.queries} drafts (target <= 100 ms):")
    for kind, p99 in summary.items():
        print(f"  {kind:10s} {p99 * 1000:5.1f} ms  {'ok' if p99 <= 0.100 else 'OVER'}")


if __name__ == "__main__":
    main()
