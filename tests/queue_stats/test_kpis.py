"""One service level and one abandon rate: the board, the report page, its CSV and
``/metrics`` give the same values for the same calls, worked out by hand; every
figure a view shows is defined once (queue_stats/kpis.py) and in the README.
Through the real panel on real SQLite / PostgreSQL and real Redis."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import ClientSession
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from callcenter.models import Call, Outcome
from panel.views import board, reports
from queue_stats import reports as rpt
from queue_stats.figures import CSV_FIELDS
from queue_stats.kpis import KPIS
from tests.panel.conftest import Panel, panel  # noqa: F401 - the fixture
from tests.panel.test_error_pages import english

README = Path(__file__).resolve().parents[2] / "README.md"
# Wednesday 25/11/2026, 10:00 in Ho Chi Minh City
T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
DAY = "2026-11-25"
Q = "t1022-morning"

Client = TestClient | ClientSession  # type: ignore[type-arg]


async def rates_everywhere(client: Client, queue: str, day: str) -> dict[str, tuple[Any, Any]]:
    """(service level, abandon rate) of ``queue`` today as each view gives them: the
    board's JSON (the queue and the total), the daily report page and its CSV (the
    total, all calls being in ``queue``) and /metrics (the queue).  Percent, as floats."""

    def num(v: Any) -> float | None:
        return None if v in (None, "", "—") else float(str(v).replace("%", "").strip())

    out: dict[str, tuple[Any, Any]] = {}
    r = await client.get("/board/figures.json")
    assert r.status == 200
    data = await r.json()
    q = data["queues"][queue]
    out["board"] = (num(q["service_level"]), num(q["abandon_rate"]))
    out["board total"] = (num(data["total"]["service_level"]), num(data["total"]["abandon_rate"]))

    r = await client.get(f"/reports/daily?day={day}")
    assert r.status == 200
    page = await r.text()
    total = page.split('<table class="figures">', 1)[1].split("</table>", 1)[0]

    def cell(key: str) -> float | None:
        m = re.search(rf'data-k="{key}">([^<]*)<', total)
        assert m, key
        return num(html.unescape(m.group(1)))

    out["report"] = (cell("service_level"), cell("abandon_rate"))

    r = await client.get(f"/reports/daily.csv?day={day}&section=summary")
    assert r.status == 200
    rows = list(csv.reader(io.StringIO((await r.text()).lstrip("\ufeff"))))
    lang = "en" if rows[0][0] == rpt.header("group", "en") else "vi"
    keys = rpt.csv_keys("summary")
    assert rows[0] == [rpt.header(k, lang) for k in keys]
    row = dict(zip(keys, next(x for x in rows[1:] if x[0] == "total"), strict=True))
    out["csv"] = (num(row["service_level"]), num(row["abandon_rate"]))

    r = await client.get("/metrics")
    assert r.status == 200
    samples = {
        (s.name, s.labels.get("queue")): s.value
        for fam in text_string_to_metric_families(await r.text())
        for s in fam.samples
    }
    out["metrics"] = (
        samples.get(("hotline_queue_service_level_percent", queue)),
        samples.get(("hotline_queue_abandon_rate_percent", queue)),
    )
    return out


async def add_calls(p: Panel, rows: list[tuple[int, Outcome, int | None]]) -> None:
    async with p.ctx.db.session() as s:
        for i, (minutes, outcome, hold) in enumerate(rows):
            start = T0 + timedelta(minutes=minutes)
            s.add(
                Call(
                    uniqueid=f"pbx-k{i}",
                    hotline_number="1022",
                    caller_number=f"09100000{i:02d}",
                    started_at=start,
                    queued_at=start + timedelta(seconds=5),
                    answered_at=start if outcome == Outcome.ANSWERED else None,
                    ended_at=None if outcome == Outcome.QUEUED else start + timedelta(minutes=2),
                    queue=Q,
                    shift_id="morning",
                    agent_extension="1001" if outcome == Outcome.ANSWERED else None,
                    hold_seconds=hold,
                    talk_seconds=60 if outcome == Outcome.ANSWERED else None,
                    outcome=outcome,
                    ivr_path="1:agent",
                )
            )


async def test_the_views_agree_on_a_flood(panel: Panel):  # noqa: F811
    """The issue's flood in small: few answered, most callers giving up. app_queue's
    ServicelevelPerf says 100 %; the service level says how few were served in time."""
    panel.ctx.clock.set(T0 + timedelta(hours=1))  # type: ignore[attr-defined]
    calls = [
        (0, Outcome.ANSWERED, 3),  # in time
        (1, Outcome.ANSWERED, 15),  # in time
        (2, Outcome.ABANDONED, 2),  # short: under 5 s, left out
        (3, Outcome.ABANDONED, 4),  # short
        (4, Outcome.ABANDONED, 5),  # not short (5 s is not under 5 s)
        *[(5 + i, Outcome.ABANDONED, 40 + i) for i in range(5)],
        (11, Outcome.TIMEOUT, 30),
        (12, Outcome.CALLBACK, 25),  # not answered, not abandoned: counted
        (13, Outcome.QUEUED, None),  # still waiting: not counted yet
    ]
    await add_calls(panel, calls)
    # by hand: 13 offered, less 2 short abandons and 1 waiting = 10 counted;
    # 2 answered within 20 s; 6 abandoned after 5 s or more + 1 timed out = 7
    want = (round(100 * 2 / 10, 1), round(100 * 7 / 10, 1))
    assert want == (20.0, 70.0)

    await panel.login("sup")
    got = await rates_everywhere(panel.client, Q, DAY)
    assert got == dict.fromkeys(("board", "board total", "report", "csv", "metrics"), want)

    # app_queue's own figure, shown only under its own name, would have said 100 %
    page = await (await panel.client.get(f"/reports/daily?day={DAY}")).text()
    assert 'data-k="service_level_perf">100.0 %' in page
    assert "ServicelevelPerf (app_queue)" in page
    board_json = await (await panel.client.get("/board/figures.json")).json()
    assert "service_level_perf" not in board_json["total"]

    # the same in English, CSV headers included
    await english(panel)
    assert await rates_everywhere(panel.client, Q, DAY) == got
    r = await panel.client.get(f"/reports/daily.csv?day={DAY}&section=summary")
    head = next(csv.reader(io.StringIO((await r.text()).lstrip("\ufeff"))))
    assert "Service level (%)" in head and "Abandon rate (%)" in head


async def test_short_abandons_follow_the_setting(panel: Panel):  # noqa: F811
    panel.ctx.clock.set(T0 + timedelta(hours=1))  # type: ignore[attr-defined]
    await add_calls(panel, [(0, Outcome.ANSWERED, 3), (1, Outcome.ABANDONED, 8)])
    await panel.login("sup")
    got = await rates_everywhere(panel.client, Q, DAY)
    assert set(got.values()) == {(50.0, 50.0)}  # the 8 s abandon counts
    settings = panel.ctx.settings
    stats = settings.stats.model_copy(update={"short_abandon_seconds": 10})
    panel.ctx.settings = settings.model_copy(update={"stats": stats})
    got = await rates_everywhere(panel.client, Q, DAY)
    assert set(got.values()) == {(100.0, 0.0)}  # now it is a short abandon


async def test_every_figure_shown_is_defined_once_and_in_the_readme(panel: Panel):  # noqa: F811
    shown = {*CSV_FIELDS, *reports.REPORT_COLUMNS, *reports.AGENT_COLUMNS, *board.DEFINED}
    assert shown <= set(KPIS)
    readme = README.read_text(encoding="utf-8")
    settings = panel.ctx.settings
    for key in sorted(shown):
        k = KPIS[key]
        assert k.label.keys() == k.definition.keys() == {"vi", "en"}, key
        # the README's table of figures: the key, both names
        assert f"`{key}`" in readme and k.name("en") in readme and k.name("vi") in readme, key
        assert "{" not in k.define("vi", settings) + k.define("en", settings), key
    for key in ("service_level_perf", "service_level_perf2", "asterisk_abandoned"):
        assert KPIS[key].app_queue and "(app_queue)" in KPIS[key].name("vi")

    # each page lists the definitions of its figures
    panel.ctx.clock.set(T0)  # type: ignore[attr-defined]
    await panel.login("sup")
    for path, keys in (
        ("/board", board.DEFINED),
        ("/board/wall", board.DEFINED),
        (f"/reports/daily?day={DAY}", reports.REPORT_COLUMNS),
    ):
        page = html.unescape(await (await panel.client.get(path)).text())
        for key in keys:
            assert f'<dd data-k="{key}">{KPIS[key].define("vi", settings)}' in page, (path, key)
