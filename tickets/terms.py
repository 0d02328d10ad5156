"""The terms of a report that its repeats are found by: folded pairs of adjacent words.

Vietnamese writes a word as syllables separated by spaces ("ngập nước", "đèn
đường", "Nguyễn Hữu Cảnh"), and one syllable alone says little ("đèn" is a lamp,
"đến" is "to"; folded, both are "den").  So a report's terms are its folded words
(:func:`core.text.words`: lower case, no accents, "đ" as "d") with the commonest
function words dropped, taken two by two: "Ngập nước ở đường Nguyễn Hữu Cảnh"
gives "ngap nuoc", "nuoc duong", "duong nguyen", "nguyen huu", "huu canh".
Typed with or without its diacritics, the same report gives the same terms.

Pure functions, no database: the migration that fills ``ticket_terms`` for old
tickets uses the same ones as the service.
"""

from __future__ import annotations

from core.text import words

# the longest word kept (a term is two of them and a space: ticket_terms.term is 81)
MAX_WORD = 40
# the most terms kept of one report (its first ones): a long complaint must not
# weigh on the index, and its start says what it is about
MAX_TERMS = 32

# Function words common in every report (folded): never part of a term.  Kept short:
# a folded syllable is often also a content word ("do": "đó" that / "đổ" fallen, "cho":
# "cho" for / "chợ" market, "de": "để" to / "đê" dike), and those stay.
STOP = frozenset(
    """
    a ah anh be bi cac cai chi co cua da dang di duoc em gi hay hoac khi khong kia la
    lai luc ma minh mot nay neu nhe nhieu nhung nhu o oi qua rang rat sao se thi tren
    trong va vao voi vi xin
    """.split()
)


def report_words(*parts: str | None) -> list[str]:
    """The folded words of ``parts`` in order, function words dropped."""
    found: list[str] = []
    for part in parts:
        if part:
            found.extend(w[:MAX_WORD] for w in words(part) if w not in STOP)
    return found


def terms(description: str | None, address: str | None = None) -> list[str]:
    """The distinct terms of a report (its description, then the address), at most
    :data:`MAX_TERMS`, in order.  A text of one word gives that word alone."""
    seen: dict[str, None] = {}
    for part in (description, address):
        ws = report_words(part)
        pairs = [f"{a} {b}" for a, b in zip(ws, ws[1:], strict=False)] if len(ws) > 1 else ws
        for t in pairs:
            seen.setdefault(t, None)
            if len(seen) >= MAX_TERMS:
                return list(seen)
    return list(seen)
