"""Every sentence of the report form has its Vietnamese (the citizens' first language)."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.pofile import read_po

from panel.i18n import LOCALE_DIR
from public import report
from tickets import attachments

TEMPLATES = Path(report.__file__).parent / "templates"


def msgids() -> set[str]:
    found = {
        m.group(2)
        for f in TEMPLATES.glob("*.html")
        for m in re.finditer(r"""_\((["'])(.*?)\1""", f.read_text(encoding="utf-8"), re.S)
    }
    found |= {
        report.TOO_SHORT,
        report.PLACE_NEEDED,
        report.HONEYPOT,
        report.TOO_FAST,
        report.EXPIRED,
        report.ALTCHA_FAILED,
        report.UNREADABLE,
        *attachments.MESSAGES,
    }
    return found


def test_every_sentence_of_the_form_is_translated():
    with (LOCALE_DIR / "vi" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale="vi")
    ids = msgids()
    assert len(ids) > 40
    missing = sorted(i for i in ids if i not in catalog or not catalog[i].string)
    assert missing == []
