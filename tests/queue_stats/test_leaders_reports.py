"""The leaders' reports on real SQLite and PostgreSQL: exact figures for known tickets, the
XLSX read back with openpyxl, the PDF's text read back with poppler's pdftotext
(Vietnamese included), the downloads' roles, and the schedule that stores and sends them."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import subprocess
from datetime import UTC, date, datetime, time, timedelta

import pytest
from openpyxl import load_workbook

from accounts.identity import Actor
from core.mail import MailAttachment
from queue_stats import documents
from queue_stats import reports as rpt
from queue_stats.periodic import NOT_CONFIGURED, PeriodicReports, due, period
from queue_stats.ticket_counts import totals
from tests.panel.conftest import Panel, panel  # noqa: F401 - the fixture
from tickets.ratings import RatingService

# Wednesday 25/11/2026, 10:00 in Ho Chi Minh City: the week of Monday 23/11.
T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
WEEK = date(2026, 11, 25)
PDFTOTEXT = shutil.which("pdftotext")


async def seed(p: Panel) -> dict[str, int]:
    """Four tickets in the week, one the week after (left out), with ratings."""
    svc, clock = p.ctx.tickets, p.ctx.clock
    sup, officer = Actor.of(p.users["sup"]), Actor.of(p.users["officer"])
    base = {"domain": "state", "citizen_phone": "0901234567", "description": "Phản ánh"}
    clock.set(T0)  # type: ignore[attr-defined]
    a = await svc.create(
        sup,
        base
        | {
            "channel": "phone",
            "topic": "procedures",
            "level": 1,
            "guidance": "Đã hướng dẫn",
            "district": "q1",
        },
    )
    b = await svc.create(
        sup,
        base
        | {
            "channel": "sms",
            "topic": "flooding",
            "level": 2,
            "agency_id": p.agency_ids["so-gtvt"],
            "district": "q1",
        },
    )
    c = await svc.create(
        sup,
        base
        | {
            "channel": "web",
            "topic": "traffic",
            "level": 2,
            "agency_id": p.agency_ids["q1"],
            "district": "Thủ Đức",
        },
    )
    d = await svc.create(
        sup,
        base | {"channel": "email", "domain": "party", "topic": "corruption", "level": 3},
    )
    clock.set(T0 + timedelta(hours=2))  # type: ignore[attr-defined]
    b = await svc.answer(officer, b.id, b.version, "Đã khơi thông cống")
    b = await svc.reopen(sup, b.id, b.version, "Vẫn còn ngập")
    ratings = RatingService(p.ctx.db, clock)
    await ratings.record(5, "web", ticket_id=a.id)
    await ratings.record(4, "web", ticket_id=b.id)
    await ratings.record(2, "web", ticket_id=b.id)
    clock.set(T0 + timedelta(days=7))  # type: ignore[attr-defined]
    await svc.create(sup, base | {"channel": "phone", "topic": "trees", "level": 2})
    clock.set(T0 + timedelta(days=8))  # type: ignore[attr-defined]
    return {"a": a.id, "b": b.id, "c": c.id, "d": d.id}


def figures(report: rpt.Report) -> dict[tuple[str, str], tuple]:
    return {
        (r.dimension, r.key): (r.received, r.closed, r.open, r.reopened, r.rated, r.rating_average)
        for r in report.tickets
    }


async def test_counts_by_channel_domain_topic_level_agency_and_district(panel: Panel):  # noqa: F811
    await seed(panel)
    ids = panel.agency_ids
    report = await rpt.weekly(panel.ctx.db, panel.ctx.settings, WEEK, panel.ctx.clock.now())
    got = figures(report)
    # (received, closed, open, reopened, ratings, average)
    assert got == {
        ("channel", "phone"): (1, 1, 0, 0, 1, 5.0),
        ("channel", "sms"): (1, 0, 1, 1, 2, 3.0),
        ("channel", "web"): (1, 0, 1, 0, 0, None),
        ("channel", "email"): (1, 0, 1, 0, 0, None),
        ("domain", "state"): (3, 1, 2, 1, 3, 3.67),
        ("domain", "party"): (1, 0, 1, 0, 0, None),
        ("topic", "procedures"): (1, 1, 0, 0, 1, 5.0),
        ("topic", "flooding"): (1, 0, 1, 1, 2, 3.0),
        ("topic", "traffic"): (1, 0, 1, 0, 0, None),
        ("topic", "corruption"): (1, 0, 1, 0, 0, None),
        ("level", "1"): (1, 1, 0, 0, 1, 5.0),
        ("level", "2"): (2, 0, 2, 1, 2, 3.0),
        ("level", "3"): (1, 0, 1, 0, 0, None),
        ("agency", ""): (2, 1, 1, 0, 1, 5.0),
        ("agency", str(ids["so-gtvt"])): (1, 0, 1, 1, 2, 3.0),
        ("agency", str(ids["q1"])): (1, 0, 1, 0, 0, None),
        ("district", "q1"): (2, 1, 1, 1, 3, 3.67),
        ("district", "Thủ Đức"): (1, 0, 1, 0, 0, None),
        ("district", ""): (1, 0, 1, 0, 0, None),
    }
    names = {(r.dimension, r.key): r.name("vi") for r in report.tickets}
    assert names[("district", "q1")] == "UBND Quận 1"  # the directory's district
    assert names[("district", "Thủ Đức")] == "Thủ Đức"  # as typed
    assert names[("agency", str(ids["so-gtvt"]))] == "Sở Giao thông Vận tải"
    assert names[("channel", "phone")] == "Điện thoại"
    assert names[("domain", "party")] == "Xây dựng Đảng"
    assert names[("topic", "flooding")] == "Ngập nước"
    # most received first within a dimension
    assert [r.key for r in report.tickets if r.dimension == "district"][0] == "q1"
    t = totals(report.tickets)
    assert (t.received, t.closed, t.reopened, t.rated) == (4, 1, 1, 3)

    # the next week holds the fifth ticket only; the month holds all five
    nxt = await rpt.weekly(panel.ctx.db, panel.ctx.settings, WEEK + timedelta(days=7), T0)
    assert totals(nxt.tickets).received == 1
    month = await rpt.monthly(panel.ctx.db, panel.ctx.settings, WEEK, T0)
    assert month.kind == "monthly" and totals(month.tickets).received == 4  # 2/12 is December
    assert month.start.astimezone(panel.ctx.settings.tz).date() == date(2026, 11, 1)
    assert len(month.series) == 30

    # the CSV section: raw keys, figures in the columns' order
    rows = rpt.csv_rows(report, "tickets", panel.ctx.settings.tz, "en")
    assert rows[0] == [
        "By",
        "Group",
        "Name",
        "Received",
        "Closed",
        "Open",
        "Reopened",
        "Ratings",
        "Average rating",
    ]
    assert ["district", "q1", "UBND Quận 1", 2, 1, 1, 1, 3, 3.67] in rows


async def test_the_xlsx_reads_back_with_every_figure(panel: Panel):  # noqa: F811
    await seed(panel)
    s = panel.ctx.settings
    report = await rpt.weekly(panel.ctx.db, s, WEEK, panel.ctx.clock.now())
    data = documents.xlsx(report, s, "vi")
    wb = load_workbook(io.BytesIO(data), read_only=True)
    assert wb.sheetnames[:2] == ["Tổng quan", "Phiếu theo nhóm"]
    assert {"Cuộc gọi", "Đơn vị", "Hài lòng", "Chủ đề và cấp độ"} <= set(wb.sheetnames)
    overview = [list(r) for r in wb["Tổng quan"].iter_rows(values_only=True)]
    assert overview[0][0] == "Báo cáo tuần 23/11/2026 – 29/11/2026"
    values = {r[0]: r[1] for r in overview[4:]}
    assert values["Tiếp nhận"] == 4
    assert values["Đã kết thúc"] == 1
    assert values["Bị mở lại"] == 1
    assert values["Lượt đánh giá"] == 3
    assert values["Điểm TB"] == 3.67
    sheet = [list(r) for r in wb["Phiếu theo nhóm"].iter_rows(values_only=True)]
    assert sheet[0][:4] == ["Theo", "Nhóm", "Tên", "Tiếp nhận"]
    assert ["channel", "sms", "Tin nhắn SMS", 1, 0, 1, 1, 2, 3] in sheet
    assert ["district", "Thủ Đức", "Thủ Đức", 1, 0, 1, 0, 0, None] in sheet
    # the agencies' timeliness sheet has both forwarded tickets
    agencies = [list(r) for r in wb["Đơn vị"].iter_rows(values_only=True)]
    assert sorted(r[1] for r in agencies[1:]) == ["q1", "so-gtvt"]


def _text(pdf: bytes, tmp_path) -> str:  # type: ignore[no-untyped-def]
    src = tmp_path / "report.pdf"
    src.write_bytes(pdf)
    out = subprocess.run(
        [PDFTOTEXT, "-layout", "-enc", "UTF-8", str(src), "-"],
        check=True,
        capture_output=True,
    )
    return out.stdout.decode("utf-8")


@pytest.mark.skipif(PDFTOTEXT is None, reason="pdftotext (poppler-utils) is not installed")
async def test_the_pdf_text_has_the_figures_in_vietnamese(panel: Panel, tmp_path):  # noqa: F811
    await seed(panel)
    s = panel.ctx.settings
    report = await rpt.weekly(panel.ctx.db, s, WEEK, panel.ctx.clock.now())
    pdf = documents.pdf(report, s, "vi")
    assert pdf.startswith(b"%PDF-")
    text = _text(pdf, tmp_path)
    for words in (
        "Báo cáo tuần 23/11/2026 – 29/11/2026",
        "Phiếu phản ánh tiếp nhận trong kỳ",
        "Kênh tiếp nhận",
        "Điện thoại",
        "Tin nhắn SMS",
        "Xây dựng Đảng",
        "Quản lý Nhà nước",
        "Ngập nước",
        "UBND Quận 1",
        "Thủ Đức",
        "Sở Giao thông Vận tải",
        "Mức độ đúng hạn của các đơn vị",
    ):
        assert words in text, words
    # the district row: received 2, closed 1, open 1, reopened 1, 3 ratings, 3.67
    line = next(x for x in text.splitlines() if "UBND Quận 1" in x and "3.67" in x)
    assert line.split()[-6:] == ["2", "1", "1", "1", "3", "3.67"]
    english = _text(documents.pdf(report, s, "en"), tmp_path)
    assert "Weekly report 23/11/2026 – 29/11/2026" in english and "Party building" in english


@pytest.mark.skipif(PDFTOTEXT is None, reason="pdftotext (poppler-utils) is not installed")
async def test_downloads_from_the_panel_are_for_supervisors_and_admins(panel: Panel, tmp_path):  # noqa: F811
    await seed(panel)
    c = panel.client
    await panel.login("sup")
    r = await c.get("/reports/weekly?week=2026-11-25")
    page = await r.text()
    assert r.status == 200 and 'id="tickets-table"' in page and "UBND Quận 1" in page
    assert 'href="/reports/weekly.pdf?week=2026-11-23"' in page
    r = await c.get("/reports/weekly.xlsx?week=2026-11-25")
    assert r.status == 200 and r.content_type == documents.XLSX_TYPE
    assert 'filename="hotline-weekly-2026-11-23.xlsx"' in r.headers["Content-Disposition"]
    load_workbook(io.BytesIO(await r.read()), read_only=True)
    r = await c.get("/reports/monthly.pdf?month=2026-11-25")
    assert r.status == 200 and r.content_type == documents.PDF_TYPE
    assert "Báo cáo tháng 01/11/2026 – 30/11/2026" in _text(await r.read(), tmp_path)
    r = await c.get("/reports/weekly.csv?section=tickets&week=2026-11-25")
    assert r.status == 200 and "UBND Quận 1" in (await r.read()).decode("utf-8-sig")
    r = await c.get("/reports/handover.pdf")
    assert r.status == 404  # the handover has no documents
    async with await panel.new_client() as other:
        token = await panel.login("agent1", other)  # noqa: F841
        r = await other.get("/reports/weekly.xlsx?week=2026-11-25")
        assert r.status == 403


def test_a_period_is_due_once_it_is_over_and_at_has_passed(panel_settings_at):  # type: ignore[no-untyped-def]
    s = panel_settings_at
    tz = s.tz

    def at(y: int, m: int, d: int, hh: int, mm: int) -> datetime:
        return datetime(y, m, d, hh, mm, tzinfo=tz)

    # Monday 30/11/2026 06:29: yesterday's day and last week are not yet written
    assert due(s, at(2026, 11, 30, 6, 29)) == [
        ("daily", date(2026, 11, 28)),
        ("weekly", date(2026, 11, 16)),
        ("monthly", date(2026, 10, 1)),
    ]
    assert due(s, at(2026, 11, 30, 6, 30)) == [
        ("daily", date(2026, 11, 29)),
        ("weekly", date(2026, 11, 23)),
        ("monthly", date(2026, 10, 1)),
    ]
    assert due(s, at(2026, 12, 1, 7, 0))[2] == ("monthly", date(2026, 11, 1))
    assert period("monthly", date(2026, 12, 31)) == (date(2026, 12, 1), date(2027, 1, 1))
    assert period("weekly", date(2026, 11, 29)) == (date(2026, 11, 23), date(2026, 11, 30))


@pytest.fixture
def panel_settings_at(tmp_path):  # type: ignore[no-untyped-def]
    from tests.panel.conftest import panel_settings

    s = panel_settings(tmp_path, "sqlite:///unused.db", "unused")
    cfg = s.periodic_reports.model_copy(
        update={"periods": ["daily", "weekly", "monthly"], "at": time(6, 30)}
    )
    return s.model_copy(update={"periodic_reports": cfg})


class RecordingMailer:
    """Stands in for the SMTP sender (another branch): records what it was handed."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[list[str], str, str, list[MailAttachment]]] = []
        self.fail = fail

    async def send(self, to, subject, text, attachments=()):  # type: ignore[no-untyped-def]
        if self.fail:
            raise ConnectionRefusedError("SMTP server refused")
        self.sent.append((list(to), subject, text, list(attachments)))


@pytest.mark.skipif(PDFTOTEXT is None, reason="pdftotext (poppler-utils) is not installed")
async def test_the_schedule_stores_once_and_hands_the_files_to_the_mailer(panel: Panel, tmp_path):  # noqa: F811
    await seed(panel)
    ctx = panel.ctx
    cfg = ctx.settings.periodic_reports.model_copy(
        update={
            "enabled": True,
            "periods": ["weekly"],
            "recipients": ["lanhdao@example.gov.vn"],
        }
    )
    settings = ctx.settings.model_copy(update={"periodic_reports": cfg})
    # Monday 30/11/2026 07:00 local: the week of 23/11 is due
    ctx.clock.set(datetime(2026, 11, 30, 0, 0, tzinfo=UTC))  # type: ignore[attr-defined]
    mailer = RecordingMailer()
    reports = PeriodicReports(ctx.db, settings, ctx.clock, mailer)
    # two processes at once: one row, one set of files
    first, second = await asyncio.gather(reports.run_due(), reports.run_due())
    assert len(first) + len(second) == 1
    rows = await reports.listing()
    assert [(r.kind, r.period_start) for r in rows] == [("weekly", date(2026, 11, 23))]
    row = rows[0]
    assert row.sent_at is not None and row.send_error is None
    assert json.loads(row.recipients) == ["lanhdao@example.gov.vn"]
    assert len(mailer.sent) == 1
    to, subject, _text_body, files = mailer.sent[0]
    assert to == ["lanhdao@example.gov.vn"] and subject == "Báo cáo tuần 23/11/2026"
    assert [f.filename for f in files] == [
        "hotline-weekly-2026-11-23.xlsx",
        "hotline-weekly-2026-11-23.pdf",
    ]
    assert "UBND Quận 1" in _text(files[1].data, tmp_path)
    assert files[0].data == reports.path(row, "xlsx").read_bytes()
    # run again: nothing new, nothing sent twice
    assert await reports.run_due() == []
    assert len(mailer.sent) == 1

    # the panel lists it and serves its files
    await panel.login("sup")
    page = await (await panel.client.get("/reports/stored")).text()
    assert 'data-start="2026-11-23"' in page
    r = await panel.client.get(f"/reports/stored/{row.id}.pdf")
    assert r.status == 200 and (await r.read()) == reports.path(row, "pdf").read_bytes()
    assert (await panel.client.get("/reports/stored/99999.pdf")).status == 404


async def test_without_email_the_report_is_kept_and_says_so(panel: Panel):  # noqa: F811
    ctx = panel.ctx
    cfg = ctx.settings.periodic_reports.model_copy(
        update={"periods": ["daily"], "recipients": ["lanhdao@example.gov.vn"]}
    )
    settings = ctx.settings.model_copy(update={"periodic_reports": cfg})
    ctx.clock.set(datetime(2026, 11, 30, 0, 0, tzinfo=UTC))  # type: ignore[attr-defined]
    reports = PeriodicReports(ctx.db, settings, ctx.clock, None)
    [row] = await reports.run_due()
    row = await reports.get(row.id)
    assert row.kind == "daily" and row.period_start == date(2026, 11, 29)
    assert row.sent_at is None and row.send_error == NOT_CONFIGURED
    assert reports.path(row, "pdf").exists() and reports.path(row, "xlsx").exists()
    # a failing sender is recorded and tried again on the next round
    failing = PeriodicReports(ctx.db, settings, ctx.clock, RecordingMailer(fail=True))
    await failing.run_due()
    row = await reports.get(row.id)
    assert row.sent_at is None and "SMTP server refused" in (row.send_error or "")
    assert row.send_attempts == 2
    ok = RecordingMailer()
    await PeriodicReports(ctx.db, settings, ctx.clock, ok).run_due()
    assert (await reports.get(row.id)).sent_at is not None and len(ok.sent) == 1
    # too old: rows and files go
    ctx.clock.set(datetime(2029, 1, 1, tzinfo=UTC))  # type: ignore[attr-defined]
    assert await reports.purge() == 1
    assert not reports.path(row, "pdf").exists()


def test_a_missing_font_names_the_setting(tmp_path, panel_settings_at):  # type: ignore[no-untyped-def]
    s = panel_settings_at
    cfg = s.periodic_reports.model_copy(update={"font": tmp_path / "none.ttf"})
    with pytest.raises(documents.FontMissing, match="periodic_reports.font"):
        documents.fonts(s.model_copy(update={"periodic_reports": cfg}))
