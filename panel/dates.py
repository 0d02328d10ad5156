"""Dates as the panel shows them and reads them back: ``dd/mm/yyyy``, Vietnamese style.

The browser's own date picker follows the browser's language (mm/dd/yyyy in
an English Chrome), so date fields are text fields in this one format
whatever the browser; ISO dates (``2026-11-25``) are read too, for links and
bookmarks made before.
"""

from __future__ import annotations

import re
from datetime import date, datetime

DAY_FORMAT = "%d/%m/%Y"
#: what a date field accepts (the browser checks it before sending)
DAY_PATTERN = r"\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{2}-\d{2}"
_DMY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
MOMENT_PATTERN = r"\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}"
_DMY_HM = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})[ T]+(\d{1,2}):(\d{2})")


def parse_day(text: str) -> date:
    """``"25/11/2026"`` (or ``"2026-11-25"``) → that date; ValueError for anything else."""
    text = text.strip()
    found = _DMY.fullmatch(text)
    if found:
        day, month, year = (int(x) for x in found.groups())
        return date(year, month, day)
    return date.fromisoformat(text)


def parse_moment(text: str) -> datetime:
    """``"01/12/2026 09:30"`` (or ISO) → that moment, naive unless ISO gave a zone; ValueError."""
    text = text.strip()
    found = _DMY_HM.fullmatch(text)
    if found:
        day, month, year, hour, minute = (int(x) for x in found.groups())
        return datetime(year, month, day, hour, minute)
    return datetime.fromisoformat(text)


def day_text(value: object) -> str:
    """A date (or a date as read from a query string) as ``dd/mm/yyyy``.

    Text that is no date comes back as it was, so a mistyped field shows what
    was typed next to its error.
    """
    if isinstance(value, date):
        return value.strftime(DAY_FORMAT)
    text = str(value or "")
    try:
        return parse_day(text).strftime(DAY_FORMAT) if text else ""
    except ValueError:
        return text
