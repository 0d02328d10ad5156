"""Scorecard criteria and the score of a grade: pure functions, no database.

A criterion has a weight; the grader gives it a mark from 0 to :data:`MAX_MARK`, or
"not applicable" (None), which leaves it out of the score.  The score is the weighted
share of full marks, 0 to 100::

    score = 100 * sum(weight * mark / MAX_MARK) / sum(weight)   (applicable criteria)

A *fatal* criterion (wrong information given, the citizen insulted) is passed (1) or
failed (0) and has no weight: one failed makes the whole score 0, whatever the rest
(a scorecard of fatal criteria only scores 100 when all passed).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from tickets.exceptions import (
    BAD_CHARACTER,
    NOT_ALLOWED,
    REQUIRED,
    TOO_LONG,
    FieldError,
    InvalidInput,
)

MAX_MARK = 4
MAX_CRITERIA = 30
MAX_WEIGHT = 100
_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True, slots=True)
class Criterion:
    id: str
    label: str
    weight: int  # 0 for a fatal criterion
    fatal: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "weight": self.weight, "fatal": self.fatal}


def slug(label: str, taken: set[str]) -> str:
    """A criterion id made from its label (ASCII letters, digits, ``_``), unique in ``taken``."""
    plain = unicodedata.normalize("NFKD", label.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch)).lower()
    base = re.sub(r"[^a-z0-9]+", "_", plain).strip("_")[:24] or "c"
    if not base[0].isalpha():
        base = f"c_{base}"[:24]
    found, n = base, 2
    while found in taken:
        found, n = f"{base}_{n}", n + 1
    return found


def check_criteria(raw: object) -> list[Criterion]:
    """Criteria as given by an admin, checked; InvalidInput names ``criteria[i].field``."""
    if not isinstance(raw, list) or not raw:
        raise InvalidInput.one("criteria", REQUIRED)
    if len(raw) > MAX_CRITERIA:
        raise InvalidInput.one("criteria", TOO_LONG, max=MAX_CRITERIA)
    errors: list[FieldError] = []
    found: list[Criterion] = []
    taken: set[str] = set()
    for i, item in enumerate(raw):
        where = f"criteria[{i}]"
        if not isinstance(item, dict):
            errors.append(FieldError(where, NOT_ALLOWED))
            continue
        label = item.get("label")
        if not isinstance(label, str) or not label.strip():
            errors.append(FieldError(f"{where}.label", REQUIRED))
            continue
        label = label.strip()
        if "\x00" in label:
            errors.append(FieldError(f"{where}.label", BAD_CHARACTER))
            continue
        if len(label) > 200:
            errors.append(FieldError(f"{where}.label", TOO_LONG, {"max": 200}))
            continue
        fatal = item.get("fatal", False)
        if not isinstance(fatal, bool):
            errors.append(FieldError(f"{where}.fatal", NOT_ALLOWED))
            continue
        weight = item.get("weight", 0 if fatal else None)
        if isinstance(weight, str) and weight.strip().isdigit():
            weight = int(weight.strip())
        if fatal:
            weight = 0
        elif weight is None or weight == "":
            errors.append(FieldError(f"{where}.weight", REQUIRED))
            continue
        elif isinstance(weight, bool) or not isinstance(weight, int):
            errors.append(FieldError(f"{where}.weight", NOT_ALLOWED))
            continue
        elif not 1 <= weight <= MAX_WEIGHT:
            errors.append(FieldError(f"{where}.weight", NOT_ALLOWED))
            continue
        cid = item.get("id")
        if cid is None or cid == "":
            cid = slug(label, taken)
        if not isinstance(cid, str) or not _ID.match(cid) or cid in taken:
            errors.append(FieldError(f"{where}.id", NOT_ALLOWED))
            continue
        taken.add(cid)
        found.append(Criterion(cid, label, weight, fatal))
    if errors:
        raise InvalidInput(errors)
    return found


def criteria_from(data: list[dict[str, Any]]) -> list[Criterion]:
    """Criteria as stored (already checked)."""
    return [Criterion(d["id"], d["label"], int(d["weight"]), bool(d.get("fatal"))) for d in data]


def check_marks(criteria: list[Criterion], raw: object) -> dict[str, int | None]:
    """The grader's marks, one per criterion; InvalidInput names ``marks.<id>``.

    A weighted criterion takes 0..MAX_MARK or None (not applicable); a fatal one 0
    (failed) or 1 (passed), never None.  Unknown ids are refused.
    """
    if not isinstance(raw, dict):
        raise InvalidInput.one("marks", REQUIRED)
    known = {c.id for c in criteria}
    errors = [FieldError(f"marks.{k}", NOT_ALLOWED) for k in raw if k not in known]
    marks: dict[str, int | None] = {}
    for c in criteria:
        value = raw.get(c.id)
        if isinstance(value, str):
            value = value.strip()
            value = None if value in ("", "na") else int(value) if value.isdigit() else value
        if value is None:
            if c.fatal:
                errors.append(FieldError(f"marks.{c.id}", REQUIRED))
            marks[c.id] = None
            continue
        top = 1 if c.fatal else MAX_MARK
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            errors.append(FieldError(f"marks.{c.id}", NOT_ALLOWED))
            continue
        marks[c.id] = value
    if errors:
        raise InvalidInput(errors)
    weighted = [c for c in criteria if not c.fatal]
    if weighted and all(marks[c.id] is None for c in weighted):
        raise InvalidInput.one("marks", REQUIRED)  # nothing applicable: nothing graded
    return marks


@dataclass(frozen=True, slots=True)
class Score:
    score: float  # 0..100, rounded to 0.1
    fatal: bool  # a fatal criterion failed
    before_fatal: float  # what the weighted criteria alone give


def score(criteria: list[Criterion], marks: dict[str, int | None]) -> Score:
    """The grade's score (see the module's text); ``marks`` as :func:`check_marks` returns."""
    weighted = [(c, marks.get(c.id)) for c in criteria if not c.fatal]
    applicable = [(c, m) for c, m in weighted if m is not None]
    total = sum(c.weight for c, _ in applicable)
    got = sum(c.weight * m / MAX_MARK for c, m in applicable)
    # a scorecard of fatal criteria only: 100 when every one passed
    raw = round(100 * got / total, 1) if total else 100.0
    fatal = any(c.fatal and marks.get(c.id) == 0 for c in criteria)
    return Score(0.0 if fatal else raw, fatal, raw)


def agreement(marks: list[int | None]) -> float | None:
    """The share of pairs of graders who gave the same mark (None when under two marks)."""
    given = [m for m in marks if m is not None]
    pairs = [(a, b) for i, a in enumerate(given) for b in given[i + 1 :]]
    if not pairs:
        return None
    return sum(1 for a, b in pairs if a == b) / len(pairs)
