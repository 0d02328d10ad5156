"""Satisfaction and reopenings in the daily and weekly reports, their CSV and /metrics, on
real SQLite and PostgreSQL: figures worked out by hand from ratings and reopenings made
through the services."""

from __future__ import annotations

import csv
import html
import io
from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from accounts.identity import CITIZEN, Actor
from callcenter.models import Call, Outcome
from queue_stats import reports as rpt
from tests.panel.conftest import Panel, panel  # noqa: F401 - the fixture
from tickets.ratings import RatingService

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 10:00 in Ho Chi Minh City
DAY = "2026-11-25"


async def _call(panel: Panel, uniqueid: str, ext: str, minutes: int) -> int:  # noqa: F811
    at = T0 + timedelta(minutes=minutes)
    async with panel.ctx.db.session() as s:
        call = Call(
            uniqueid=uniqueid,
            caller_number="0909123456",
            started_at=at,
            queued_at=at,
            answered_at=at + timedelta(seconds=20),
            ended_at=at + timedelta(minutes=3),
            agent_extension=ext,
            agent_name=f"Agent {ext}",
            outcome=Outcome.ANSWERED,
            queue="t1022-morning",
        )
        s.add(call)
        await s.flush()
        return call.id


async def _world(panel: Panel) -> dict[str, int]:  # noqa: F811
    """Three answered calls (two by 1001, one by 1002); a ticket on the first forwarded to
    the department, answered, rated 1 and reopened by the citizen; the second call rated 5
    without a ticket; a web rating 4 of the same ticket; one rating the day before."""
    ctx = panel.ctx
    ctx.clock.set(T0)  # type: ignore[attr-defined]
    agent = Actor.of(panel.users["agent1"])  # extension 1001
    officer = Actor.of(panel.users["officer"])
    dept = panel.agency_ids["so-gtvt"]
    c1 = await _call(panel, "pbx-1.1", "1001", 0)
    c2 = await _call(panel, "pbx-1.2", "1002", 10)
    await _call(panel, "pbx-1.3", "1001", 20)
    old = await _call(panel, "pbx-0.9", "1001", -24 * 60)
    t = await ctx.tickets.create(
        agent,
        {
            "channel": "phone",
            "domain": "state",
            "topic": "flooding",
            "level": 2,
            "description": "Ngập hẻm 42",
            "agency_id": dept,
        },
        call_id=c1,
    )
    t = await ctx.tickets.answer(officer, t.id, t.version, "Đã nạo vét")
    ratings = RatingService(ctx.db, ctx.clock)
    ctx.clock.set(T0 + timedelta(hours=1))  # type: ignore[attr-defined]
    await ratings.record(1, "after_call", call_id=c1)
    await ctx.tickets.reopen(CITIZEN, t.id, t.version, "Chấm 1 điểm", via="survey", rating=1)
    await ratings.record(5, "after_call", call_id=c2)
    await ratings.record(4, "web", ticket_id=t.id)
    await ratings.record(2, "after_call", call_id=old, at=T0 - timedelta(days=1))
    ctx.clock.set(T0 + timedelta(hours=2))  # type: ignore[attr-defined]
    return {"ticket": t.id, "dept": dept}


def _rows(report: rpt.Report) -> dict[tuple[str, str], object]:
    return {(r.group, r.key): r for r in report.satisfaction}


async def test_the_daily_and_weekly_reports_count_ratings_and_reopenings(panel):  # noqa: F811
    ids = await _world(panel)
    ctx = panel.ctx
    now = ctx.clock.now()
    for report in (
        await rpt.daily(ctx.db, ctx.settings, T0.date(), now),
        await rpt.weekly(ctx.db, ctx.settings, T0.date(), now),
    ):
        rows = _rows(report)
        total = rows[("total", "")]
        weekly = report.kind == "weekly"
        # the day before is in the week (Tuesday 24 November, the week of Monday 23)
        assert total.counts == ([1, 1, 0, 1, 1] if weekly else [1, 0, 0, 1, 1]), report.kind
        assert total.rating_average == (3.0 if weekly else 3.33)
        # 2 of the day's 3 answered calls were rated (the web rating has no call)
        assert total.answered == (4 if weekly else 3)
        assert total.rated_share == (75.0 if weekly else 66.7)
        assert total.reopened == 1

        dept = rows[("agency", str(ids["dept"]))]
        assert dept.name == "Sở Giao thông Vận tải"
        assert (dept.rated, dept.rating_average, dept.reopened) == (2, 2.5, 1)
        assert dept.rated_share is None  # answered calls are per agent, not per agency
        flooding, level2 = rows[("topic", "flooding")], rows[("level", "2")]
        assert (flooding.rated, flooding.reopened) == (level2.rated, level2.reopened) == (2, 1)

        a1001, a1002 = rows[("agent", "1001")], rows[("agent", "1002")]
        assert a1001.counts == ([1, 1, 0, 0, 0] if weekly else [1, 0, 0, 0, 0])
        assert a1001.answered == (3 if weekly else 2) and a1001.reopened == 1
        assert a1001.rated_share == (66.7 if weekly else 50.0)
        assert (a1002.rated, a1002.rating_average, a1002.rated_share) == (1, 5.0, 100.0)
        assert a1002.reopened == 0
        assert [r.group for r in report.satisfaction][0] == "total"

        [agency] = [a for a in report.agencies if a.agency_id == ids["dept"]]
        assert agency.forwarded == 1 and agency.reopened == 1

    # another day: nothing
    empty = await rpt.daily(ctx.db, ctx.settings, T0.date() + timedelta(days=1), now)
    [total] = empty.satisfaction
    assert (total.rated, total.reopened, total.rating_average) == (0, 0, None)


async def test_csv_page_and_metrics_show_the_same_figures(panel):  # noqa: F811
    ids = await _world(panel)
    await panel.login("sup")
    r = await panel.client.get(f"/reports/daily.csv?section=satisfaction&day={DAY}")
    assert r.status == 200
    rows = list(csv.reader(io.StringIO((await r.text()).lstrip("\ufeff"))))
    assert rows[0][:6] == [
        "Theo",
        "Nhóm",
        "Tên",
        "Lượt đánh giá",
        "Điểm hài lòng trung bình (/5)",
        "Tỷ lệ cuộc gọi được đánh giá (%)",
    ]
    assert rows[0][-1] == "Mở lại" and rows[0][6:11] == [f"Điểm {n}" for n in range(1, 6)]
    assert rows[1] == ["total", "", "", "3", "3.33", "66.7", "1", "0", "0", "1", "1", "1"]
    dept = next(row for row in rows if row[:2] == ["agency", str(ids["dept"])])
    assert dept[2:6] == ["Sở Giao thông Vận tải", "2", "2.5", ""] and dept[-1] == "1"

    r = await panel.client.get(f"/reports/daily.csv?section=agencies&day={DAY}")
    agencies = list(csv.reader(io.StringIO((await r.text()).lstrip("\ufeff"))))
    reopened = agencies[0].index("Mở lại")  # the review's columns (sent back...) follow it
    assert agencies[1][2] == "Sở Giao thông Vận tải"
    assert agencies[1][reopened] == "1"

    page = html.unescape(await (await panel.client.get(f"/reports/weekly?week={DAY}")).text())
    assert 'id="satisfaction-table"' in page
    assert '<tr data-group="agent" data-key="1002">' in page
    assert '<td data-k="rating_average">3.0 /5</td>' in page  # the week's total
    assert '<dd data-k="rated_share">' in page  # defined on the page, like every figure

    ctx = panel.ctx
    ctx.clock.set(T0 + timedelta(hours=2))  # type: ignore[attr-defined]
    text = await (await panel.client.get("/metrics")).text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }
    assert samples[("hotline_tickets_reopened_total", ())] == 1
    assert (
        samples[("hotline_satisfaction_ratings_total", (("rating", "1"), ("source", "after_call")))]
        == 1
    )
    assert (
        samples[("hotline_satisfaction_ratings_total", (("rating", "4"), ("source", "web")))] == 1
    )
    assert (
        samples[("hotline_satisfaction_ratings_total", (("rating", "2"), ("source", "after_call")))]
        == 1
    )
    assert (
        samples[("hotline_satisfaction_today_rating_average", (("group", "total"), ("key", "")))]
        == 3.33
    )
    agency = (("group", "agency"), ("key", str(ids["dept"])))
    assert samples[("hotline_satisfaction_today_reopened", agency)] == 1
    assert (
        samples[("hotline_satisfaction_today_rated_share", (("group", "agent"), ("key", "1001")))]
        == 50.0
    )
