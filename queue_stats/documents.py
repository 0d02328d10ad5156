"""A report as documents for the leaders: an XLSX workbook and a PDF.

- :func:`xlsx`: a sheet *Overview* with the period's key figures, then one sheet per
  section of the report, each the same rows as the section's CSV
  (:func:`queue_stats.reports.csv_rows`, headers in the reader's language; text that a
  spreadsheet would run as a formula is defused the same way).  Written with openpyxl.
- :func:`pdf`: the overview, the tickets received by channel, domain, topic, level,
  agency and district (received, closed, open, reopened, ratings and their average),
  and the agencies' timeliness, on A4.  Written with fpdf2, which embeds the TrueType
  font named by ``[periodic_reports] font`` / ``font_bold`` (Debian's DejaVu Sans by
  default, which has every Vietnamese letter): the PDF needs no font on the reader's
  side, and its text can be searched and copied (the tests read it back with
  ``pdftotext``).

Both are pure functions of a built :class:`~queue_stats.reports.Report`: CPU work, so
the callers run them in a thread (:mod:`queue_stats.periodic`, the panel's download).
Why these two libraries: both are maintained, pure Python wheels (no outside binary,
no browser or LibreOffice to drive), and each is the common choice for its format in
Python; openpyxl also reads the workbook back in the tests.
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from openpyxl import Workbook
from openpyxl.styles import Font

from core.settings import Settings
from queue_stats.kpis import KPIS
from queue_stats.reports import SECTIONS, Report, _cell, csv_rows
from queue_stats.ticket_counts import DIMENSION_NAMES, DIMENSIONS, totals

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PDF_TYPE = "application/pdf"

TITLES: dict[str, dict[str, str]] = {
    "daily": {"vi": "Báo cáo ngày", "en": "Daily report"},
    "weekly": {"vi": "Báo cáo tuần", "en": "Weekly report"},
    "monthly": {"vi": "Báo cáo tháng", "en": "Monthly report"},
    "handover": {"vi": "Báo cáo giao ca", "en": "Shift handover summary"},
}
WORDS: dict[str, dict[str, str]] = {
    "hotline": {
        "vi": "Đường dây nóng tiếp nhận phản ánh của người dân",
        "en": "Citizen hotline",
    },
    "generated": {"vi": "Lập lúc", "en": "Generated"},
    "overview": {"vi": "Tổng quan", "en": "Overview"},
    "figure": {"vi": "Chỉ tiêu", "en": "Figure"},
    "value": {"vi": "Giá trị", "en": "Value"},
    "tickets": {"vi": "Phiếu phản ánh tiếp nhận trong kỳ", "en": "Reports received"},
    "agencies": {
        "vi": "Mức độ đúng hạn của các đơn vị (phiếu chuyển trong kỳ)",
        "en": "Agencies' timeliness (tickets forwarded in the period)",
    },
    "none": {"vi": "Không có.", "en": "None."},
    "name": {"vi": "Nhóm", "en": "Group"},
}
# the sheets of the sections, by language (at most 31 characters, none of []:*?/\)
SHEETS: dict[str, dict[str, str]] = {
    "summary": {"vi": "Cuộc gọi", "en": "Calls"},
    "series": {"vi": "Theo thời gian", "en": "Over time"},
    "topics": {"vi": "Chủ đề và cấp độ", "en": "Topics and levels"},
    "agencies": {"vi": "Đơn vị", "en": "Agencies"},
    "satisfaction": {"vi": "Hài lòng", "en": "Satisfaction"},
    "wrapup": {"vi": "Mã kết thúc", "en": "Wrap-up codes"},
    "tickets": {"vi": "Phiếu theo nhóm", "en": "Reports by group"},
}
TICKET_HEADERS: dict[str, dict[str, str]] = {
    "received": {"vi": "Tiếp nhận", "en": "Received"},
    "closed": {"vi": "Đã kết thúc", "en": "Closed"},
    "open": {"vi": "Đang xử lý", "en": "Open"},
    "reopened": {"vi": "Bị mở lại", "en": "Reopened"},
    "rated": {"vi": "Lượt đánh giá", "en": "Ratings"},
    "rating_average": {"vi": "Điểm TB", "en": "Avg. rating"},
}
AGENCY_HEADERS: dict[str, dict[str, str]] = {
    "rank": {"vi": "Hạng", "en": "Rank"},
    "name": {"vi": "Đơn vị", "en": "Agency"},
    "forwarded": {"vi": "Đã chuyển", "en": "Forwarded"},
    "on_time": {"vi": "Đúng hạn", "en": "On time"},
    "late": {"vi": "Trễ hạn", "en": "Late"},
    "overdue": {"vi": "Quá hạn", "en": "Overdue"},
    "pending": {"vi": "Trong hạn", "en": "Pending"},
    "on_time_rate": {"vi": "Tỷ lệ đúng hạn", "en": "On time"},
}


def _w(table: dict[str, dict[str, str]], key: str, lang: str) -> str:
    return table[key].get(lang) or table[key]["vi"]


def period_text(report: Report, settings: Settings) -> str:
    """ "30/11/2026 – 06/12/2026": the period's first and last local day."""
    tz = settings.tz
    first = report.start.astimezone(tz).date()
    last = (report.end - timedelta(seconds=1)).astimezone(tz).date()
    if first == last:
        return first.strftime("%d/%m/%Y")
    return f"{first:%d/%m/%Y} – {last:%d/%m/%Y}"


def title(report: Report, settings: Settings, lang: str) -> str:
    return f"{_w(TITLES, report.kind, lang)} {period_text(report, settings)}"


def overview(report: Report, lang: str) -> list[tuple[str, Any]]:
    """The period's key figures: (name, value)."""
    t = totals(report.tickets)
    f = report.total
    return [
        (_w(TICKET_HEADERS, "received", lang), t.received),
        (_w(TICKET_HEADERS, "closed", lang), t.closed),
        (_w(TICKET_HEADERS, "open", lang), t.open),
        (_w(TICKET_HEADERS, "reopened", lang), t.reopened),
        (_w(TICKET_HEADERS, "rated", lang), t.rated),
        (_w(TICKET_HEADERS, "rating_average", lang), t.rating_average),
        (KPIS["offered"].name(lang), f.offered),
        (KPIS["answered"].name(lang), f.answered),
        (f"{KPIS['service_level'].name(lang)} (%)", f.service_level),
        (f"{KPIS['abandon_rate'].name(lang)} (%)", f.abandon_rate),
    ]


# ---- XLSX ---------------------------------------------------------------------


def xlsx(report: Report, settings: Settings, lang: str = "vi") -> bytes:
    """The workbook: the overview, then one sheet per section (its CSV rows)."""
    wb = Workbook()
    bold = Font(bold=True)
    ws = wb.active
    assert ws is not None
    ws.title = _w(WORDS, "overview", lang)
    ws.append([title(report, settings, lang)])
    ws["A1"].font = Font(bold=True, size=14)
    generated = report.generated_at.astimezone(settings.tz).strftime("%d/%m/%Y %H:%M")
    ws.append([_w(WORDS, "generated", lang), generated])
    ws.append([])
    ws.append([_w(WORDS, "figure", lang), _w(WORDS, "value", lang)])
    for cell in ws[4]:
        cell.font = bold
    for name, value in overview(report, lang):
        ws.append([name, _cell(value)])
    ws.column_dimensions["A"].width = 40
    ws.column_dimensions["B"].width = 20
    for section in (*SECTIONS[-1:], *SECTIONS[:-1]):  # the leaders' figures first
        sheet = wb.create_sheet(_w(SHEETS, section, lang))
        for row in csv_rows(report, section, settings.tz, lang):
            sheet.append([_cell(v) for v in row])
        for cell in sheet[1]:
            cell.font = bold
        sheet.freeze_panes = "A2"
        for col in sheet.iter_cols(min_row=1, max_row=1):
            width = max(len(str(c.value or "")) for c in col)
            sheet.column_dimensions[col[0].column_letter].width = min(max(width + 2, 10), 40)
    wb.properties.title = title(report, settings, lang)
    wb.properties.creator = "hotline"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# ---- PDF ----------------------------------------------------------------------


class FontMissing(Exception):
    """The PDF's font file is not there (``[periodic_reports] font``)."""

    def __init__(self, key: str, path: Path) -> None:
        self.key = key
        self.path = path
        super().__init__(
            f"periodic_reports.{key}: no font file {path} (install fonts-dejavu-core, or name "
            "a TrueType font with Vietnamese letters)"
        )


def fonts(settings: Settings) -> tuple[Path, Path]:
    """The regular and bold font files, checked."""
    found = []
    for key in ("font", "font_bold"):
        path = settings.path(getattr(settings.periodic_reports, key))
        if not path.is_file():
            raise FontMissing(key, path)
        found.append(path)
    return found[0], found[1]


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def pdf(report: Report, settings: Settings, lang: str = "vi") -> bytes:
    """The PDF for the leaders (see the module's docstring)."""
    regular, bold = fonts(settings)
    doc = FPDF(orientation="portrait", unit="mm", format="A4")
    doc.set_auto_page_break(auto=True, margin=15)
    doc.add_font("body", "", str(regular))
    doc.add_font("body", "B", str(bold))
    doc.set_title(title(report, settings, lang))
    doc.set_creator("hotline")
    doc.set_lang(lang)
    # the same report gives the same bytes (no "now" inside)
    doc.set_creation_date(report.generated_at.replace(microsecond=0))
    doc.add_page()
    doc.set_font("body", "B", 15)
    doc.multi_cell(0, 8, title(report, settings, lang), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.set_font("body", "", 9)
    generated = report.generated_at.astimezone(settings.tz).strftime("%d/%m/%Y %H:%M")
    doc.cell(
        0,
        6,
        f"{_w(WORDS, 'hotline', lang)} · {_w(WORDS, 'generated', lang)} {generated}",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    _heading(doc, _w(WORDS, "overview", lang))
    _table(
        doc,
        [_w(WORDS, "figure", lang), _w(WORDS, "value", lang)],
        [[name, _num(v)] for name, v in overview(report, lang)],
        widths=(3, 1),
    )
    _heading(doc, _w(WORDS, "tickets", lang))
    keys = list(TICKET_HEADERS)
    for dim in DIMENSIONS:
        rows = [r for r in report.tickets if r.dimension == dim]
        doc.set_font("body", "B", 10)
        doc.cell(0, 7, _w(DIMENSION_NAMES, dim, lang), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        if not rows:
            _muted(doc, _w(WORDS, "none", lang))
            continue
        _table(
            doc,
            [_w(WORDS, "name", lang), *(_w(TICKET_HEADERS, k, lang) for k in keys)],
            [[r.name(lang), *(_num(getattr(r, k)) for k in keys)] for r in rows],
            widths=(4, 1, 1, 1, 1, 1, 1),
        )
    _heading(doc, _w(WORDS, "agencies", lang))
    if report.agencies:
        akeys = list(AGENCY_HEADERS)
        _table(
            doc,
            [_w(AGENCY_HEADERS, k, lang) for k in akeys],
            [
                [
                    str(a.rank),
                    a.name,
                    *(_num(getattr(a, k)) for k in akeys[2:-1]),
                    "—" if a.on_time_rate is None else f"{a.on_time_rate:g} %",
                ]
                for a in report.agencies
            ],
            widths=(0.6, 4, 1, 1, 1, 1, 1, 1.2),
        )
    else:
        _muted(doc, _w(WORDS, "none", lang))
    return bytes(doc.output())


def _heading(doc: FPDF, text: str) -> None:
    doc.ln(3)
    doc.set_font("body", "B", 12)
    doc.multi_cell(0, 8, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _muted(doc: FPDF, text: str) -> None:
    doc.set_font("body", "", 9)
    doc.cell(0, 6, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _table(doc: FPDF, header: list[str], rows: list[list[str]], widths: tuple[float, ...]) -> None:
    doc.set_font("body", "", 8)
    with doc.table(
        col_widths=widths,
        text_align=("LEFT", *(["RIGHT"] * (len(header) - 1))),
        line_height=5,
        first_row_as_headings=True,
    ) as table:
        head = table.row()
        for h in header:
            head.cell(h)
        for r in rows:
            line = table.row()
            for v in r:
                line.cell(v)
    doc.ln(2)


def file_name(report: Report, settings: Settings, suffix: str) -> str:
    """``hotline-weekly-2026-11-30.pdf``: the kind and the first local day."""
    day = report.start.astimezone(settings.tz).date().isoformat()
    return f"hotline-{report.kind}-{day}.{suffix}"
