#!/bin/sh
# Re-extract the panel's msgids into panel/locale/messages.pot and merge them
# into the Vietnamese catalogue (panel/locale/vi/LC_MESSAGES/messages.po).
#
# Run it after adding or changing a _("…") in panel/ (or a domain message, which
# is also listed in panel/messages.py), then translate every entry it reports:
# new ones have an empty msgstr, changed ones are marked "#, fuzzy" (remove the
# mark once the translation is right: fuzzy entries are not used).  Finally run
#   .venv/bin/pytest -p no:cacheprovider tests/panel/test_i18n.py -q
set -eu

cd "$(dirname "$0")/../.."
PYBABEL=${PYBABEL:-.venv/bin/pybabel}
[ -x "$PYBABEL" ] || PYBABEL=pybabel
PYTHON=$(dirname "$(command -v "$PYBABEL")")/python
[ -x "$PYTHON" ] || PYTHON=python3
POT=panel/locale/messages.pot
PO=panel/locale/vi/LC_MESSAGES/messages.po

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n 1)
"$PYBABEL" --quiet extract -F panel/babel.cfg --no-default-keywords -k _ -k N_ \
    --project=hotline --version="$VERSION" --copyright-holder=hotline --sort-by-file \
    -o "$POT" .

if [ -f "$PO" ]; then
    "$PYBABEL" --quiet update --previous --ignore-obsolete -i "$POT" -d panel/locale -l vi -D messages
else
    "$PYBABEL" --quiet init -i "$POT" -d panel/locale -l vi -D messages
fi

"$PYTHON" - "$PO" <<'PY'
import sys

from babel.messages.pofile import read_po

with open(sys.argv[1], "rb") as f:
    catalog = read_po(f, locale="vi")
todo = [m for m in catalog if m.id and (not m.string or m.fuzzy)]
print(f"{sys.argv[1]}: {sum(1 for m in catalog if m.id)} messages, {len(todo)} to translate")
for m in todo:
    print(("  fuzzy: " if m.fuzzy else "  new:   ") + repr(m.id))
PY
