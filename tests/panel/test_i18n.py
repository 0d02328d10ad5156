"""The panel's Vietnamese catalogue covers every msgid, and the tooling around it works.

When a test here fails after you added or changed a text: list a domain
message in ``panel/messages.py`` (if it is not written as ``_("…")`` in panel
code), run ``panel/locale/update.sh`` and translate the new entries of
``panel/locale/vi/LC_MESSAGES/messages.po``.
"""

from __future__ import annotations

import ast
import io
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from panel.i18n import I18n

ROOT = Path(__file__).resolve().parents[2]
PANEL = ROOT / "panel"
TEMPLATES = PANEL / "templates"
PO = PANEL / "locale" / "vi" / "LC_MESSAGES" / "messages.po"
MESSAGES_PY = PANEL / "messages.py"
PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def _catalog() -> Catalog:
    with PO.open("rb") as f:
        return read_po(f, locale="vi")


def _extracted() -> dict[str, list[str]]:
    """msgid -> where it is used, extracted as panel/locale/update.sh does."""
    with (PANEL / "babel.cfg").open(encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f, "panel/babel.cfg")

    def only_panel(path: str) -> bool:
        rel = Path(path).relative_to(ROOT)
        return (rel.parts[:1] in ((), ("panel",))) and not rel.name.startswith((".", "_"))

    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(ROOT),
        method_map,
        options_map,
        keywords={"_": None},
        directory_filter=only_panel,
    ):
        msgid = message if isinstance(message, str) else message[0]
        found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


def test_extraction_finds_templates_views_and_domain_messages() -> None:
    found = _extracted()
    places = {p.split(":")[0] for where in found.values() for p in where}
    assert "panel/templates/login.html" in places
    assert "panel/templates/_macros.html" in places
    assert "panel/messages.py" in places
    assert "panel/security.py" in places
    assert "{n} tickets" in found  # a call with keyword parameters


def test_every_msgid_has_a_vietnamese_translation() -> None:
    catalog = _catalog()
    missing = []
    for msgid, where in sorted(_extracted().items()):
        entry = catalog.get(msgid)
        if entry is None or not entry.string or entry.fuzzy:
            missing.append(f"{msgid!r} ({', '.join(where)})")
    assert not missing, (
        f"{len(missing)} msgid(s) without a Vietnamese translation; run panel/locale/update.sh "
        "and translate them in " + str(PO.relative_to(ROOT)) + ":\n  " + "\n  ".join(missing)
    )


def test_catalogue_header_and_no_fuzzy_entries() -> None:
    catalog = _catalog()
    assert str(catalog.locale) == "vi"
    assert catalog.plural_forms == "nplurals=1; plural=0;"
    assert catalog.charset.lower() == "utf-8"
    assert not catalog.fuzzy
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not fuzzy, f"fuzzy entries are not used; review and unmark them: {fuzzy}"


def test_translations_keep_the_placeholders() -> None:
    wrong = []
    for m in _catalog():
        if not m.id or not m.string:
            continue
        assert isinstance(m.id, str) and isinstance(m.string, str), "no plural forms expected"
        want, got = Counter(PLACEHOLDER.findall(m.id)), Counter(PLACEHOLDER.findall(m.string))
        if want != got:
            wrong.append(f"{m.id!r}: {sorted(want)} but the translation has {sorted(got)}")
    assert not wrong, "placeholders changed:\n  " + "\n  ".join(wrong)


# -- the domain messages listed in panel/messages.py ----------------------------


def _marked_in_messages_py() -> set[str]:
    with MESSAGES_PY.open("rb") as f:
        return {
            message
            for _lineno, message, _comments, _context in extract("python", f, keywords={"N_": None})
            if isinstance(message, str)
        }


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _string(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _constants(rel: str) -> tuple[dict[str, str], list[str]]:
    """A module's upper-case string constants, and the names its ``MESSAGES`` lists."""
    constants: dict[str, str] = {}
    listed: list[str] = []
    for node in _tree(ROOT / rel).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id.isupper():
                text = _string(node.value)
                if text is not None:
                    constants[target.id] = text
                elif target.id == "MESSAGES" and isinstance(node.value, ast.Tuple):
                    listed = [e.id for e in node.value.elts if isinstance(e, ast.Name)]
    return constants, listed


def _ticket_messages() -> Iterator[tuple[str, str]]:
    """The module-level msgid constants of tickets/exceptions.py (REQUIRED = "is required")."""
    constants, listed = _constants("tickets/exceptions.py")
    assert constants, "no msgid constants found in tickets/exceptions.py"
    assert set(listed) == set(constants), "tickets/exceptions.py: MESSAGES lists other names"
    for name, text in constants.items():
        yield f"tickets/exceptions.py {name}", text


# other modules whose field errors are msgid constants listed in their ``MESSAGES``
MESSAGE_MODULES = ("tickets/attachments.py", "public/report.py")


def _listed_messages(rel: str) -> Iterator[tuple[str, str]]:
    """The msgid constants a module lists in its ``MESSAGES`` tuple."""
    constants, listed = _constants(rel)
    assert listed, f"{rel}: no MESSAGES tuple"
    for name in listed:
        yield f"{rel} {name}", constants[name]


FIELD_ERROR_CALLS = {"FieldError", "_field_error", "one"}  # (field, message, …)


def _messages_in_code(path: Path) -> Iterator[tuple[str, str]]:
    """Plain-string msgids the web layer translates later, as they are written in the code.

    * ``("is required for an agent", {})``: an account error (message, params);
    * ``FieldError(field, "…")``, ``_field_error(field, "…")``, ``InvalidInput.one(field, "…")``;
    * ``request[GETTEXT]("…")``: translated on the spot, but invisible to the extractor.
    """
    rel = path.relative_to(ROOT).as_posix()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Tuple) and len(node.elts) == 2:
            text = _string(node.elts[0])
            if text is not None and isinstance(node.elts[1], ast.Dict):
                yield f"{rel}:{node.lineno}", text
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in FIELD_ERROR_CALLS and len(node.args) >= 2:
                text = _string(node.args[1])
                if text is not None:
                    yield f"{rel}:{node.lineno}", text
            elif (
                isinstance(func, ast.Subscript)
                and (
                    _string(func.slice) == "_"
                    or (isinstance(func.slice, ast.Name) and func.slice.id == "GETTEXT")
                )
                and node.args
                and _string(node.args[0]) is not None
            ):
                yield f"{rel}:{node.lineno}", _string(node.args[0])  # type: ignore[misc]


def _domain_messages() -> list[tuple[str, str]]:
    found = list(_ticket_messages())
    for rel in MESSAGE_MODULES:
        found.extend(_listed_messages(rel))
    files = [
        *sorted((ROOT / "accounts").glob("*.py")),
        *sorted((ROOT / "tickets").glob("*.py")),
        *sorted((ROOT / "public").glob("*.py")),
        *sorted(p for p in PANEL.rglob("*.py") if p != MESSAGES_PY),
    ]
    for path in files:
        found.extend(_messages_in_code(path))
    return found


def test_the_domain_scan_sees_the_known_kinds() -> None:
    texts = {text for _where, text in _domain_messages()}
    assert "is required" in texts  # tickets/exceptions.py
    assert "is required for an agent" in texts  # accounts/service.py
    assert "is too short (at least {min} characters)" in texts  # accounts/passwords.py
    assert "This action is not possible in the ticket's status." in texts  # request["_"]
    assert "must be a photo (JPEG, PNG or WebP)" in texts  # tickets/attachments.py
    assert "The form could not be read. Please send it again." in texts  # public/report.py


def test_every_domain_message_is_listed_in_panel_messages() -> None:
    marked = _marked_in_messages_py()
    missing = sorted(
        f"{text!r} ({where})" for where, text in _domain_messages() if text not in marked
    )
    assert not missing, (
        "add these to panel/messages.py with N_(…), then run panel/locale/update.sh and "
        "translate them:\n  " + "\n  ".join(missing)
    )


def test_panel_messages_module_matches_its_markers() -> None:
    from panel import messages

    assert messages.N_("x") == "x"
    assert messages.MSGIDS == _marked_in_messages_py()


# -- the catalogue at run time, and the templates ---------------------------------


def test_i18n_translates_vietnamese_and_keeps_english() -> None:
    i18n = I18n()
    vi, en = i18n.gettext("vi"), i18n.gettext("en")
    assert vi("Sign in") == "Đăng nhập"
    assert en("Sign in") == "Sign in"
    assert vi("{n} tickets", n=3) == "3 phiếu"
    assert en("{n} tickets", n=3) == "3 tickets"
    assert vi("is too long (at most {max} characters)", max=200) == "quá dài (tối đa 200 ký tự)"
    assert i18n.gettext("fr")("Sign in") == "Đăng nhập"  # unknown language: Vietnamese


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # the filters panel/app.py registers (a template using an unknown one does not compile)
    app = (PANEL / "app.py").read_text(encoding="utf-8")
    for name in re.findall(r"""env\.filters\[["'](\w+)["']\]""", app):
        env.filters[name] = lambda value, *args, **kwargs: value
    return env


@pytest.mark.parametrize(
    "name", sorted(p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.html"))
)
def test_template_compiles(name: str) -> None:
    env = _environment()
    source = (TEMPLATES / name).read_text(encoding="utf-8")
    env.parse(source, name)
    env.get_template(name)


def test_po_file_is_read_strictly() -> None:
    # read_po tolerates broken lines unless abort_invalid: catch a hand-edit gone wrong
    read_po(io.BytesIO(PO.read_bytes()), locale="vi", abort_invalid=True)
