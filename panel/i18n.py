"""Gettext catalogues of the panel: Vietnamese first, English selectable.

Message ids are English; ``locale/vi/LC_MESSAGES/messages.po`` translates
them.  The .po file is compiled in memory at start (no build step, nothing
generated to commit).
"""

from __future__ import annotations

import gettext
import io
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = {"vi": "Tiếng Việt", "en": "English"}


def load(language: str) -> gettext.NullTranslations:
    po = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=language)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(buf)


class I18n:
    def __init__(self) -> None:
        self.catalogues = {lang: load(lang) for lang in LANGUAGES}

    def get(self, language: str) -> gettext.NullTranslations:
        return self.catalogues.get(language) or self.catalogues["vi"]

    def gettext(self, language: str):  # type: ignore[no-untyped-def]
        t = self.get(language)

        def _(message: str, **params: Any) -> str:
            text = t.gettext(message)
            return text.format(**params) if params else text

        return _
