"""The agency directory as CSV: export it, and import it with a dry run first.

Steps of an import:

1. ``plan(text)`` reads the CSV (UTF-8, a header row; the columns of
   :data:`COLUMNS`, any order, only ``code`` required) against the directory
   as stored, and says for every row whether it adds an agency, changes one
   (which fields, from what to what), changes nothing, or is refused (the row's
   line and the field, with the same messages as the panel's form).  Nothing
   is written.
2. ``apply(text, expected)`` plans again inside one transaction and writes it
   all or nothing: refused when any row has an error, or when the plan is no
   longer the one the admin saw (``expected`` is :attr:`Plan.fingerprint`: an
   agency changed meanwhile).

Rows are matched by ``code``; agencies absent from the file are left alone (to
take one out of service, give it ``active = 0``).  A cell left empty clears an
optional field; a column left out of the file keeps what is stored.  Parents
are named by code (``parent_code``), and may be agencies added by the same file.
An export, imported again, changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.identity import Actor
from accounts.models import Role
from core.clock import Clock
from core.db import Database
from tickets.exceptions import (
    CYCLE,
    INVALID,
    REQUIRED,
    UNKNOWN,
    FieldError,
    Forbidden,
    InvalidInput,
    VersionConflict,
)
from tickets.models import Agency, AgencyKind
from tickets.schemas import AgencyIn, validate

log = logging.getLogger(__name__)

COLUMNS = (
    "code",
    "parent_code",
    "kind",
    "name",
    "contact_name",
    "phone",
    "email",
    "address",
    "active",
)
# fields of the agency (AgencyIn) a column sets directly
_PLAIN = ("kind", "name", "contact_name", "phone", "email", "address")
MAX_ROWS = 5000
MAX_BYTES = 2_000_000

# msgids of the CSV's own refusals (translated by the web layer: panel/messages.py)
UNKNOWN_COLUMN = "is not a column of the directory"
DUPLICATE = "appears more than once in the file"
NOT_CSV = "cannot be read as CSV (UTF-8, with a header row)"
TOO_MANY = "has too many rows (at most {max})"
_TRUE = {"1", "true", "yes", "y", "co", "có", "x"}
_FALSE = {"0", "false", "no", "n", "khong", "không"}

ADDED, CHANGED, UNCHANGED, ERROR = "added", "changed", "unchanged", "error"


@dataclass
class RowPlan:
    """What one row of the file does."""

    line: int
    code: str
    outcome: str  # added, changed, unchanged, error
    # field -> [stored, new] (for a new agency stored is None)
    changes: dict[str, list[Any]] = field(default_factory=dict)
    errors: list[FieldError] = field(default_factory=list)
    # the values to write (fields of Agency; parent by code)
    values: dict[str, Any] = field(default_factory=dict)
    parent_code: str | None = None
    agency_id: int | None = None
    version: int | None = None


@dataclass
class Plan:
    """The dry run: every row's outcome, and the file's own problems (line 1)."""

    rows: list[RowPlan]
    errors: list[tuple[int, FieldError]] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.rows if r.outcome == outcome)

    @property
    def ok(self) -> bool:
        return not self.errors and all(r.outcome != ERROR for r in self.rows)

    def all_errors(self) -> list[tuple[int, FieldError]]:
        """Every problem with its line, in the file's order."""
        found = list(self.errors)
        for r in self.rows:
            found.extend((r.line, e) for e in r.errors)
        return found

    @property
    def fingerprint(self) -> str:
        """Identifies what applying would do (and against which stored versions)."""
        body = [
            [r.code, r.outcome, r.version, sorted(r.changes.items())]
            for r in self.rows
            if r.outcome in (ADDED, CHANGED)
        ]
        digest = hashlib.sha256(json.dumps(body, default=str, ensure_ascii=False).encode())
        return digest.hexdigest()[:32]


def export_csv(agencies: list[Agency]) -> str:
    """The directory as CSV, parents before their sub-agencies (so it imports back)."""
    by_id = {a.id: a for a in agencies}
    children: dict[int | None, list[Agency]] = {}
    for a in sorted(agencies, key=lambda a: (a.kind, a.name.casefold(), a.id)):
        parent = a.parent_id if a.parent_id in by_id else None
        children.setdefault(parent, []).append(a)
    ordered: list[Agency] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        a = stack.pop()
        ordered.append(a)
        stack.extend(reversed(children.get(a.id, [])))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for a in ordered:
        parent = by_id.get(a.parent_id) if a.parent_id else None
        writer.writerow(
            [
                a.code,
                parent.code if parent else "",
                a.kind,
                a.name,
                a.contact_name or "",
                a.phone or "",
                a.email or "",
                a.address or "",
                "1" if a.active else "0",
            ]
        )
    return out.getvalue()


def _flag(text: str) -> bool | None:
    t = text.strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    return None


def make_plan(text: str, stored: list[Agency]) -> Plan:
    """The dry run of importing ``text`` over the ``stored`` agencies (pure)."""
    text = text.lstrip("\ufeff")  # a spreadsheet's byte-order mark
    if len(text.encode("utf-8", "replace")) > MAX_BYTES or "\x00" in text:
        return Plan([], [(1, FieldError("file", NOT_CSV))])
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = [h.strip().lower() for h in next(reader, [])]
        raw_rows = [(reader.line_num, row) for row in reader]
    except csv.Error:
        return Plan([], [(1, FieldError("file", NOT_CSV))])
    problems: list[tuple[int, FieldError]] = []
    for name in header:
        if name not in COLUMNS:
            problems.append((1, FieldError(name or "?", UNKNOWN_COLUMN)))
    if "code" not in header:
        problems.append((1, FieldError("code", REQUIRED)))
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        problems.append((1, FieldError(dup, DUPLICATE)))
    if len(raw_rows) > MAX_ROWS:
        problems.append((1, FieldError("file", TOO_MANY, {"max": MAX_ROWS})))
    if problems:
        return Plan([], problems)

    by_code = {a.code: a for a in stored}
    by_id = {a.id: a for a in stored}
    rows: list[RowPlan] = []
    seen: dict[str, int] = {}
    for line, cells in raw_rows:
        if not any(c.strip() for c in cells):
            continue
        cells = cells + [""] * (len(header) - len(cells))
        given = dict(zip(header, cells, strict=False))
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
            rows.append(
                RowPlan(line, given.get("code", ""), ERROR, errors=[FieldError("row", INVALID)])
            )
            continue
        rows.append(_row(line, given, by_code, by_id, seen))
    _resolve_parents(rows, by_code, by_id)
    return Plan(rows)


def _row(
    line: int,
    given: dict[str, str],
    by_code: dict[str, Agency],
    by_id: dict[int, Agency],
    seen: dict[str, int],
) -> RowPlan:
    code = given["code"].strip().lower()
    current = by_code.get(code)
    plan = RowPlan(line, code, ADDED if current is None else UNCHANGED)
    if code in seen:
        plan.outcome = ERROR
        plan.errors.append(FieldError("code", DUPLICATE))
        return plan
    seen[code] = line
    stored: dict[str, Any] = {}
    if current is not None:
        stored = {n: getattr(current, n) for n in _PLAIN}
        plan.agency_id, plan.version = current.id, current.version
    wanted = dict(stored)
    for name in _PLAIN:
        if name in given:
            wanted[name] = given[name]
    data = {"code": code, **{k: v for k, v in wanted.items() if v not in (None, "")}}
    try:
        form = validate(AgencyIn, data)
    except InvalidInput as e:
        plan.outcome = ERROR
        plan.errors.extend(e.errors)
        return plan
    values = {n: _plain(getattr(form, n)) for n in _PLAIN}
    values["code"] = form.code
    if "active" in given and given["active"].strip():
        flag = _flag(given["active"])
        if flag is None:
            plan.outcome = ERROR
            plan.errors.append(FieldError("active", INVALID))
            return plan
        values["active"] = flag
    elif current is None:
        values["active"] = True
    if "parent_code" in given:
        plan.parent_code = given["parent_code"].strip().lower() or None
    elif current is not None and current.parent_id in by_id:
        plan.parent_code = by_id[current.parent_id].code
    plan.values = values
    if current is None:
        plan.changes = {
            k: [None, v] for k, v in values.items() if v not in (None, "") and k != "code"
        }
    else:
        plan.changes = {
            k: [getattr(current, k), v]
            for k, v in values.items()
            if k != "code" and getattr(current, k) != v
        }
    return plan


def _resolve_parents(
    rows: list[RowPlan], by_code: dict[str, Agency], by_id: dict[int, Agency]
) -> None:
    """Check every row's parent (stored, or added by the file) and that the tree
    stays a tree; record parent changes."""
    in_file = {r.code: r for r in rows if r.outcome != ERROR}
    # the parent of every code after the import
    parent_of: dict[str, str | None] = {
        a.code: (by_id[a.parent_id].code if a.parent_id in by_id else None)
        for a in by_code.values()
    }
    for r in in_file.values():
        parent_of[r.code] = r.parent_code
    for r in rows:
        if r.outcome == ERROR:
            continue
        p = r.parent_code
        if p is not None and p not in by_code and p not in in_file:
            r.outcome = ERROR
            r.errors.append(FieldError("parent_code", UNKNOWN))
            continue
        # walk up: meeting the row again is a cycle
        seen: set[str] = set()
        node = p
        while node is not None and node not in seen:
            if node == r.code:
                r.outcome = ERROR
                r.errors.append(FieldError("parent_code", CYCLE))
                break
            seen.add(node)
            node = parent_of.get(node)
        if r.outcome == ERROR:
            continue
        current = by_code.get(r.code)
        before = None
        if current is not None and current.parent_id in by_id:
            before = by_id[current.parent_id].code
        if current is None:
            if p is not None:
                r.changes["parent_code"] = [None, p]
        elif before != p:
            r.changes["parent_code"] = [before, p]
        if r.outcome != ADDED:
            r.outcome = CHANGED if r.changes else UNCHANGED


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, AgencyKind) else value


class DirectoryFiles:
    """Export and import of the directory (admins), around :func:`make_plan`."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def export(self, actor: Actor | None = None) -> str:
        if actor is not None and actor.role not in (Role.ADMIN, Role.SUPERVISOR):
            raise Forbidden("export_agencies", actor.role)
        async with self.db.session() as s:
            return export_csv(list((await s.scalars(select(Agency))).all()))

    async def plan(self, actor: Actor | None, text: str) -> Plan:
        """The dry run (nothing written)."""
        self._require_admin(actor)
        async with self.db.session() as s:
            return make_plan(text, list((await s.scalars(select(Agency))).all()))

    async def apply(self, actor: Actor | None, text: str, expected: str | None = None) -> Plan:
        """Write the import, all or nothing.  Refused (``InvalidInput``) when the file
        has errors; ``VersionConflict`` when ``expected`` (the dry run's fingerprint)
        no longer matches."""
        self._require_admin(actor)
        async with self.db.session() as s:
            stored = list((await s.scalars(select(Agency).with_for_update())).all())
            plan = make_plan(text, stored)
            if not plan.ok:
                raise InvalidInput([e for _line, e in plan.all_errors()])
            if expected is not None and expected != plan.fingerprint:
                raise VersionConflict(None, 0, None)
            await self._write(s, plan, stored)
        log.info(
            "agency directory imported by %s: %d added, %d changed, %d unchanged",
            actor.name if actor else "the command line",
            plan.count(ADDED),
            plan.count(CHANGED),
            plan.count(UNCHANGED),
        )
        return plan

    async def _write(self, s: AsyncSession, plan: Plan, stored: list[Agency]) -> None:
        now = self.clock.now()
        ids = {a.code: a.id for a in stored}
        added = [r for r in plan.rows if r.outcome == ADDED]
        # parents first: add in rounds, each adding the rows whose parent is known
        while added:
            ready = [r for r in added if r.parent_code is None or r.parent_code in ids]
            if not ready:  # cannot happen after _resolve_parents; never loop forever
                raise InvalidInput.one("parent_code", CYCLE)
            for r in ready:
                agency = Agency(
                    **r.values,
                    parent_id=ids.get(r.parent_code) if r.parent_code else None,
                    created_at=now,
                    updated_at=now,
                    version=1,
                )
                s.add(agency)
                await s.flush()
                ids[r.code] = agency.id
            added = [r for r in added if r not in ready]
        for r in plan.rows:
            if r.outcome != CHANGED:
                continue
            values = {k: v[1] for k, v in r.changes.items() if k != "parent_code"}
            if "parent_code" in r.changes:
                p = r.changes["parent_code"][1]
                values["parent_id"] = ids[p] if p else None
            result = await s.execute(
                update(Agency)
                .where(Agency.id == r.agency_id, Agency.version == r.version)
                .values(**values, version=(r.version or 0) + 1, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise VersionConflict(None, r.version or 0, None, agency_id=r.agency_id)

    @staticmethod
    def _require_admin(actor: Actor | None) -> None:
        # None: the command line, run by the machine's administrator
        if actor is not None and actor.role != Role.ADMIN:
            raise Forbidden("import_agencies", actor.role)
