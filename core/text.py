"""Text as every search sees it: lower case, without accents.

Citizens' SMS and many agents type Vietnamese without its diacritics
("nguyen huu canh" for "Nguyễn Hữu Cảnh"), and the same letter can arrive
precomposed (NFC, "ậ" one code point) or decomposed (NFD, "a" and two
combining marks) depending on the keyboard or the speech model.  So every
search (tickets, their citizens' names and addresses, transcripts) folds both
the stored text and the query with :func:`fold`: case-folded, decomposed, its
combining marks (tones, circumflex, breve, horn) dropped, "đ" read as "d",
then recomposed.  "Nguyễn", "NGUYEN" and "nguyen" are then one word; so are
"ma", "mà" and "má" (a search finds more, never less).

Recomposing keeps scripts whose letters decompose into other letters intact:
a Korean syllable goes to its jamo (which are not combining marks) and back.
The standard library is enough: ``unicodedata`` knows every mark.

The application folds in Python, on writes and on queries, and the databases
only compare folded text: SQLite and PostgreSQL give the same answers, with
no database extension or collation involved.
"""

from __future__ import annotations

import re
import unicodedata

WORD = re.compile(r"\w+")

# Letters with a stroke are not decomposed by Unicode: Vietnamese "đ" is the one
# people type as "d".  (Only lower case: the text is case-folded first.)
_STROKES = str.maketrans({"đ": "d"})


def fold(text: str) -> str:
    """``text`` lower case and without accents: "Đường Lê Lợi" -> "duong le loi"."""
    if text.isascii():  # most queries, and SMS typed without accents
        return text.lower()
    decomposed = unicodedata.normalize("NFD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", bare.translate(_STROKES))


def fold_phrase(text: str) -> str:
    """:func:`fold`, with every run of white space (new lines too) one space, none at the ends.

    What a substring search compares: "Lê  Lợi" typed with two spaces, or a
    description broken across lines, still matches "le loi".
    """
    return " ".join(fold(text).split())


def words(text: str) -> list[str]:
    """The words of ``text``, folded, punctuation dropped."""
    return WORD.findall(fold(text))
