"""Reports and /metrics through the real panel (real Redis, real SQLite / PostgreSQL):
values worked out by hand, roles, bad input, CSV, Prometheus access."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from accounts.identity import Actor
from callcenter.live import LiveState
from callcenter.models import Call, Outcome
from queue_stats import reports as rpt
from tests.panel.conftest import Panel, panel  # noqa: F401 - the fixture

# Wednesday 25/11/2026, 10:00 in Ho Chi Minh City: the week of Monday 23/11.
T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
Q = "t1022-morning"


async def add_calls(p: Panel) -> None:
    rows = [
        # (minutes after T0, outcome, hold, talk, agent, queue)
        (0, Outcome.ANSWERED, 4, 100, "1001", Q),
        (5, Outcome.ANSWERED, 30, 50, "1002", Q),
        (9, Outcome.ABANDONED, 2, None, None, Q),
        (12, Outcome.ABANDONED, 25, None, None, Q),
        (15, Outcome.TIMEOUT, 30, None, None, Q),
        (20, Outcome.ANSWERED, 1, 20, "1011", "t1022-night"),
        (60 * 24 * 7, Outcome.ANSWERED, 1, 20, "1001", Q),  # next week
    ]
    async with p.ctx.db.session() as s:
        for i, (m, outcome, hold, talk, agent, queue) in enumerate(rows):
            start = T0 + timedelta(minutes=m)
            s.add(
                Call(
                    uniqueid=f"pbx-r{i}",
                    hotline_number="1022",
                    caller_number=f"09000000{i:02d}",
                    started_at=start,
                    queued_at=start + timedelta(seconds=5),
                    answered_at=start if outcome == Outcome.ANSWERED else None,
                    ended_at=start + timedelta(minutes=3),
                    queue=queue,
                    shift_id=queue.partition("-")[2],
                    agent_extension=agent,
                    hold_seconds=hold,
                    talk_seconds=talk,
                    outcome=outcome,
                    ivr_path="1:agent",
                )
            )


async def add_tickets(p: Panel) -> None:
    svc, clock = p.ctx.tickets, p.ctx.clock
    sup = Actor.of(p.users["sup"])
    officer, officer_q1 = Actor.of(p.users["officer"]), Actor.of(p.users["officer_q1"])
    base = {
        "channel": "phone",
        "domain": "state",
        "topic": "flooding",
        "description": "Ngập nước đường Nguyễn Huệ",
        "citizen_phone": "0901234567",
    }
    clock.set(T0)  # type: ignore[attr-defined]
    await svc.create(sup, base | {"level": 1, "guidance": "Đã hướng dẫn"})
    on_time = await svc.create(sup, base | {"level": 2, "agency_id": p.agency_ids["so-gtvt"]})
    overdue = await svc.create(sup, base | {"level": 2, "agency_id": p.agency_ids["q1"]})
    late = await svc.create(
        sup, base | {"level": 2, "topic": "traffic", "agency_id": p.agency_ids["q1"]}
    )
    assert overdue.deadline_at == T0 + timedelta(hours=72)
    clock.set(T0 + timedelta(hours=1))  # type: ignore[attr-defined]
    t = await svc.accept(officer, on_time.id, on_time.version)
    await svc.answer(officer, t.id, t.version, "Đã khơi thông cống")
    clock.set(T0 + timedelta(hours=80))  # type: ignore[attr-defined]
    t = await svc.accept(officer_q1, late.id, late.version)
    await svc.answer(officer_q1, t.id, t.version, "Đã xử lý")
    # Sunday 29/11, 10:00: still the same week; the second q1 ticket is overdue.
    clock.set(T0 + timedelta(days=4))  # type: ignore[attr-defined]


def parse_csv(text: str, section: str = "summary", lang: str = "vi") -> list[dict[str, str]]:
    """The rows of a CSV export by column key, read through the documented key
    (the header in ``lang`` of each key, README "Reports")."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    head = next(reader)
    keys = rpt.csv_keys(section)
    assert head == [rpt.header(k, lang) for k in keys]
    return [dict(zip(keys, row, strict=True)) for row in reader]


async def test_weekly_report_page_and_csv(panel: Panel):  # noqa: F811
    await add_calls(panel)
    await add_tickets(panel)
    await panel.login("sup")
    r = await panel.client.get("/reports/weekly?week=2026-11-26")
    assert r.status == 200, await r.text()
    page = await r.text()
    assert "Sở Giao thông Vận tải" in page and "UBND Quận 1" in page
    assert page.index("Sở Giao thông Vận tải") < page.index("UBND Quận 1")  # ranked

    r = await panel.client.get("/reports/weekly.csv?week=2026-11-23&section=summary")
    assert r.status == 200 and r.content_type == "text/csv"
    assert "hotline-weekly-2026-11-23-summary.csv" in r.headers["Content-Disposition"]
    text = await r.text()
    head = next(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert head[:4] == ["Theo", "Nhóm", "Vào hàng đợi", "Đã trả lời"]  # Vietnamese first
    assert "Mức phục vụ (%)" in head and "Tỷ lệ bỏ dở (%)" in head
    assert "ServicelevelPerf (app_queue) (%)" in head  # app_queue's, named as such
    rows = parse_csv(text)
    total = next(x for x in rows if x["group"] == "total")
    # by hand: 6 calls this week, 3 answered (4, 30, 1 s), 2 abandoned (one short), 1 timeout
    assert (total["offered"], total["answered"], total["abandoned"]) == ("6", "3", "2")
    assert (total["short_abandoned"], total["timed_out"]) == ("1", "1")
    assert total["answered_in_sl"] == "2" and total["service_level_perf"] == "66.7"
    # ours: over the 5 calls counted (the 2 s abandon is short): 2 in time; 25 s + timeout
    assert total["counted"] == "5"
    assert total["service_level"] == "40.0" and total["abandon_rate"] == "40.0"
    # (2 answered + 1 abandoned (2 s) within 20 s) / (3 + 3)
    assert total["service_level_perf2"] == "50.0"
    assert total["asa"] == "11.7" and total["longest_wait"] == "30"
    agents = {x["key"]: x for x in rows if x["group"] == "agent"}
    assert set(agents) == {"1001", "1002", "1011"}
    assert agents["1001"]["talk_seconds"] == "100"
    shifts = {x["key"]: x["offered"] for x in rows if x["group"] == "shift"}
    assert shifts == {"morning": "5", "night": "1"}

    r = await panel.client.get("/reports/weekly.csv?week=2026-11-23&section=agencies")
    agencies = parse_csv(await r.text(), "agencies")
    assert [(a["rank"], a["code"]) for a in agencies] == [("1", "so-gtvt"), ("2", "q1")]
    assert agencies[0] | {} == agencies[0] and agencies[0]["on_time"] == "1"
    q1 = agencies[1]
    assert (q1["forwarded"], q1["on_time"], q1["late"], q1["overdue"]) == ("2", "0", "1", "1")
    assert q1["on_time_rate"] == "0.0" and agencies[0]["on_time_rate"] == "100.0"

    r = await panel.client.get("/reports/weekly.csv?week=2026-11-23&section=topics")
    topics = {x["topic"]: x for x in parse_csv(await r.text(), "topics")}
    assert (topics["flooding"]["level_1"], topics["flooding"]["level_2"]) == ("1", "2")
    assert topics["traffic"]["total"] == "1"

    r = await panel.client.get("/reports/weekly.csv?week=2026-11-23&section=series")
    days = parse_csv(await r.text(), "series")
    assert len(days) == 7 and days[0]["start"] == "2026-11-23T00:00:00+07:00"
    assert [d["offered"] for d in days] == ["0", "0", "6", "0", "0", "0", "0"]


async def test_daily_report_and_handover(panel: Panel):  # noqa: F811
    await add_calls(panel)
    await panel.login("sup")
    r = await panel.client.get("/reports/daily.csv?day=2026-11-25&section=series")
    hours = parse_csv(await r.text(), "series")
    assert len(hours) == 24
    assert hours[10]["offered"] == "6" and hours[10]["answered"] == "3"
    r = await panel.client.get("/reports/daily?day=2026-11-25")
    assert r.status == 200

    panel.ctx.clock.set(T0 + timedelta(hours=1))  # type: ignore[attr-defined]
    r = await panel.client.get("/reports/handover")
    assert r.status == 200
    page = await r.text()
    # the morning shift's unanswered callers, not through since: to call back
    assert "0900000002" in page and "0900000003" in page and "0900000004" in page
    r = await panel.client.get("/reports/handover.csv?section=summary")
    total = next(x for x in parse_csv(await r.text()) if x["group"] == "total")
    assert total["offered"] == "5"  # the morning shift's calls only


async def test_roles_and_bad_input(panel: Panel):  # noqa: F811
    await panel.login("agent1")
    for path in ("/reports", "/reports/daily", "/reports/weekly.csv", "/reports/handover"):
        r = await panel.client.get(path, allow_redirects=False)
        assert r.status == 403, path
    async with await panel.new_client() as admin:
        await panel.login("admin", admin)  # type: ignore[arg-type]
        r = await admin.get("/reports/daily?day=25-11-2026")
        assert r.status == 400 and "day" in await r.text()
        r = await admin.get("/reports/daily.csv?section=everything")
        assert r.status == 400 and "section" in await r.text()
        r = await admin.get("/reports")
        assert r.status == 200


async def test_csv_defuses_formulas(panel: Panel):  # noqa: F811
    admin = Actor.of(panel.users["admin"])
    evil = await panel.ctx.agencies.create(
        admin, {"kind": "ward", "code": "evil", "name": '=HYPERLINK("x")'}
    )
    sup = Actor.of(panel.users["sup"])
    await panel.ctx.tickets.create(
        sup,
        {
            "channel": "phone",
            "domain": "state",
            "topic": "trees",
            "level": 2,
            "description": "Cây đổ",
            "agency_id": evil.id,
        },
    )
    await panel.login("sup")
    r = await panel.client.get("/reports/daily.csv?section=agencies")
    [row] = parse_csv(await r.text(), "agencies")
    assert row["agency"] == '\'=HYPERLINK("x")'


async def test_metrics(panel: Panel, tmp_path):  # noqa: F811
    await add_calls(panel)
    live = LiveState(panel.ctx.bus, panel.ctx.clock)
    now = panel.ctx.clock.now()
    live.member_added(Q, "1001", "free", False, None, now)
    live.member_added(Q, "1002", "free", True, "meal", now)
    live.caller_joined(Q, "pbx-w1", "0901", 1, now - timedelta(seconds=42))
    live.caller_joined(Q, "pbx-w2", "0902", 2, now - timedelta(seconds=7))
    await live.flush()

    r = await panel.client.get("/metrics")  # no sign-in: from loopback
    assert r.status == 200, await r.text()
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(await r.text())
        for s in fam.samples
    }
    q = (("queue", Q),)
    assert samples[("hotline_queue_callers_waiting", q)] == 2
    assert samples[("hotline_queue_longest_wait_seconds", q)] == 42
    assert samples[("hotline_queue_members", (("queue", Q), ("state", "free")))] == 1
    assert samples[("hotline_queue_members", (("queue", Q), ("state", "paused")))] == 1
    assert samples[("hotline_queue_calls_offered_total", q)] == 6
    assert samples[("hotline_queue_calls_answered_total", q)] == 3
    assert samples[("hotline_queue_calls_abandoned_total", q)] == 2
    assert samples[("hotline_queue_calls_timed_out_total", q)] == 1

    settings = panel.ctx.settings
    stats = settings.stats.model_copy(update={"metrics_allow": settings.stats.metrics_allow[:0]})
    panel.ctx.settings = settings.model_copy(update={"stats": stats})
    r = await panel.client.get("/metrics")
    assert r.status == 403  # loopback no longer allowed

    token = tmp_path / "metrics.token"
    token.write_text("s3cret-token\n")
    stats = settings.stats.model_copy(update={"metrics_token_file": token})
    panel.ctx.settings = settings.model_copy(update={"stats": stats})
    assert (await panel.client.get("/metrics")).status == 403
    bad = {"Authorization": "Bearer wrong"}
    assert (await panel.client.get("/metrics", headers=bad)).status == 403
    good = {"Authorization": "Bearer s3cret-token"}
    assert (await panel.client.get("/metrics", headers=good)).status == 200
