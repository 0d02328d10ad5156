"""What each notification says, in Vietnamese (with diacritics: it goes as UCS-2)
or English.  Pure functions of the ticket's values: the tests read them, the
planner writes them into the notification's row when it becomes owed.

An SMS names the report by its all-digit number (``123 456 789 0``,
:mod:`tickets.numbers`), the one a citizen keys on the phone menu and the
status page; the result is cut so that the whole SMS stays within three
UCS-2 parts.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from tickets.numbers import format_number

# the agency's result, as much as an SMS of three UCS-2 parts leaves room for
RESULT_CHARS = 110

SMS: dict[str, dict[str, str]] = {
    "vi": {
        "code": "Tổng đài {hotline} đã tiếp nhận phản ánh của bạn. Số phản ánh: {number}. "
        "Tra cứu: gọi {hotline} hoặc {status}",
        "code_nostatus": "Tổng đài {hotline} đã tiếp nhận phản ánh của bạn. Số phản ánh: {number}. "
        "Tra cứu: gọi {hotline}",
        "forwarded": "Phản ánh số {number} đã được chuyển tới {agency} để xử lý.",
        "result": "Phản ánh số {number} đã có kết quả: {result} Xem thêm: {status}",
        "result_nostatus": "Phản ánh số {number} đã có kết quả: {result}",
        "survey": "Bạn hài lòng với kết quả phản ánh số {number}? Trả lời 1 (rất không hài "
        "lòng) đến 5 (rất hài lòng) trong {days} ngày.",
        "survey_low": "Cảm ơn bạn. Nếu muốn xử lý lại phản ánh số {number}, trả lời 9.",
        "survey_thanks": "Cảm ơn bạn đã đánh giá.",
        "reopened": "Phản ánh số {number} đã được mở lại; tổng đài sẽ xử lý tiếp.",
    },
    "en": {
        "code": "Hotline {hotline} has your report. Its number: {number}. "
        "Follow it: call {hotline} or {status}",
        "code_nostatus": "Hotline {hotline} has your report. Its number: {number}. "
        "Follow it: call {hotline}",
        "forwarded": "Report {number} was forwarded to {agency} for handling.",
        "result": "Report {number} has a result: {result} More: {status}",
        "result_nostatus": "Report {number} has a result: {result}",
        "survey": "Are you satisfied with the result of report {number}? Reply 1 (very "
        "dissatisfied) to 5 (very satisfied) within {days} days.",
        "survey_low": "Thank you. To have report {number} handled again, reply 9.",
        "survey_thanks": "Thank you for your rating.",
        "reopened": "Report {number} was reopened; the hotline handles it again.",
    },
}


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut at a word within ``limit`` characters (… when cut)."""
    flat = " ".join((text or "").split())
    if len(flat) <= limit:
        return flat if flat.endswith((".", "!", "?")) else f"{flat}."
    cut = flat[: limit - 1].rsplit(" ", 1)[0]
    return f"{cut}…"


def sms_text(
    kind: str,
    language: str,
    *,
    number: str,
    hotline: str,
    status_url: str | None,
    agency: str | None = None,
    result: str | None = None,
    days: int = 3,
) -> str:
    """The SMS of ``kind`` (a :class:`notify.models.Kind` for the citizen)."""
    texts = SMS.get(language, SMS["vi"])
    key = kind
    if kind in ("code", "result") and not status_url:
        key = f"{kind}_nostatus"
    return texts[key].format(
        number=format_number(number),
        hotline=hotline,
        status=status_url or "",
        agency=agency or ("cơ quan chức năng" if language == "vi" else "the agency in charge"),
        result=shorten(result or "", RESULT_CHARS),
        days=days,
    )


def status_url(base: str | None, prefix: str) -> str | None:
    """The public status page's address, or None when ``public.url`` is not set."""
    return f"{base.rstrip('/')}{prefix}/status" if base else None


def _local(moment: datetime | None, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%d/%m/%Y %H:%M") if moment else "—"


def agency_email(
    kind: str,
    *,
    code: str,
    number: str,
    level: int,
    topic: str,
    description: str,
    deadline: datetime | None,
    agency: str,
    child_agency: str | None,
    panel_url: str,
    tz: ZoneInfo,
) -> tuple[str, str]:
    """(subject, body) of an email to an agency, Vietnamese then English."""
    ref = f"{code} / {format_number(number)}"
    when = _local(deadline, tz)
    subject_vi, subject_en, lead_vi, lead_en = {
        "agency_forwarded": (
            "Phản ánh chuyển đến",
            "Report forwarded to you",
            f"Tổng đài chuyển tới {agency} phản ánh sau; hạn xử lý {when}.",
            f"The hotline forwards this report to {agency}; due {when}.",
        ),
        "agency_reminder": (
            "Nhắc hạn xử lý",
            "Deadline reminder",
            f"Phản ánh sau sắp đến hạn xử lý ({when}).",
            f"This report is due soon ({when}).",
        ),
        "agency_overdue": (
            "Phản ánh quá hạn",
            "Report overdue",
            f"Phản ánh sau đã quá hạn xử lý ({when}) và đã được báo lên cấp trên.",
            f"This report is past its deadline ({when}) and was escalated.",
        ),
        "agency_escalation": (
            "Phản ánh quá hạn của đơn vị trực thuộc",
            "A report overdue at an agency under you",
            f"{child_agency or '?'} chưa xử lý phản ánh sau trong hạn ({when}).",
            f"{child_agency or '?'} did not handle this report by its deadline ({when}).",
        ),
    }[kind]
    subject = f"[{code}] {subject_vi} / {subject_en}"
    body = "\n".join(
        [
            lead_vi,
            lead_en,
            "",
            f"Mã / Code: {ref}",
            f"Cấp độ / Level: {level}",
            f"Lĩnh vực / Topic: {topic}",
            "",
            description.strip(),
            "",
            f"{panel_url.rstrip('/')}/tickets/{code}",
        ]
    )
    return subject, body


def citizen_email(kind: str, sms: str, code: str) -> tuple[str, str]:
    """(subject, body) of an email to a citizen: the SMS's words, in a mail."""
    subject = {
        "code": "Tổng đài đã tiếp nhận phản ánh / Your report was received",
        "forwarded": "Phản ánh đã được chuyển / Your report was forwarded",
        "result": "Kết quả phản ánh / The result of your report",
        "survey": "Đánh giá kết quả / Rate the result",
    }.get(kind, "Tổng đài / Hotline")
    return f"[{code}] {subject}", sms
