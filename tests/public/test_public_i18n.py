"""The public site's texts are all in the Vietnamese catalogue (the panel's, which
hotline.app hands to the public site), and its templates compile."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from panel.i18n import I18n

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = ROOT / "public"
PO = ROOT / "panel" / "locale" / "vi" / "LC_MESSAGES" / "messages.po"


def public_msgids() -> dict[str, list[str]]:
    """msgid -> where, extracted from public/ as panel/locale/update.sh does."""
    with (ROOT / "panel" / "babel.cfg").open(encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f, "panel/babel.cfg")

    def only_public(path: str) -> bool:
        rel = Path(path).relative_to(ROOT)
        return rel.parts[:1] in ((), ("public",)) and not rel.name.startswith(".")

    found: dict[str, list[str]] = {}
    for filename, lineno, message, _c, _ctx in extract_from_dir(
        str(ROOT),
        method_map,
        options_map,
        keywords={"_": None, "N_": None},
        directory_filter=only_public,
    ):
        msgid = message if isinstance(message, str) else message[0]
        found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


def test_extraction_sees_the_public_templates_and_messages() -> None:
    found = public_msgids()
    places = {p.split(":")[0] for where in found.values() for p in where}
    assert "public/templates/status.html" in places
    assert "public/exceptions.py" in places
    assert "Completed reports" in found


def test_every_public_msgid_has_a_vietnamese_translation() -> None:
    with PO.open("rb") as f:
        catalog = read_po(f, locale="vi")
    missing = []
    for msgid, where in sorted(public_msgids().items()):
        entry = catalog.get(msgid)
        if entry is None or not entry.string or entry.fuzzy:
            missing.append(f"{msgid!r} ({', '.join(where)})")
    assert not missing, "translate in messages.po:\n  " + "\n  ".join(missing)


def test_the_public_pages_speak_vietnamese_first() -> None:
    vi = I18n().gettext("vi")
    assert vi("Completed reports") == "Phản ánh đã xử lý xong"
    assert vi("Reports found: {n}", n=2) == "Tìm thấy 2 phản ánh"


@pytest.mark.parametrize("name", sorted(p.name for p in (PUBLIC / "templates").glob("*.html")))
def test_template_compiles(name: str) -> None:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(PUBLIC / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["local"] = lambda v, *a: v
    env.get_template(name)
