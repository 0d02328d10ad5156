"""Repeat reports: the same matter reported again, suggested, linked, answered together.

Follow a repeat:

1. every ticket's report is indexed as it is written (:func:`index_terms`, called by
   :class:`tickets.service.TicketService` in the same transaction): its folded word
   pairs (:mod:`tickets.terms`) go to ``ticket_terms``;
2. while an agent writes a report (any channel: the panel's form as they type, or the
   page of a ticket that came by SMS or the web), :meth:`RepeatService.suggest` finds
   likely earlier reports of the last ``[tickets] repeat_window_days`` days: the same
   phone, and the same words (with or without diacritics), ranked with the same
   topic and district; a group is offered once, by its first report;
3. the agent links the ticket to one of them (:meth:`RepeatService.link`): the ticket
   joins that report's group, whose first report (the *group's ticket*,
   ``repeat_of`` None, ``repeats`` counting the others) is the one handled;
4. when the group's ticket gets the agency's result (:meth:`TicketService.answer`),
   :func:`share_result` gives it, in the same transaction, to every open level-2/3
   report of the group: each is answered with it, gets its own result call and a line
   in its history, and its creator is told, exactly as for an answer of its own;
   a report linked to a group already answered gets the result as it joins;
5. a group of ``[tickets] repeat_flag_after`` reports whose ticket is not answered is
   flagged for level 3 (:func:`flag`): once, with a line in its history, a mark on the
   supervisors' list and an alert on the bus topic ``alerts``.

Concurrency.  Linking writes the ticket under its version (as every workflow move), and
changes the groups' bookkeeping (``repeat_of`` of the ticket's own repeats, the counts)
without bumping other tickets' versions, so an officer typing an answer is not refused
because a citizen's repeat was linked.  Before writing, the rows involved are locked in
the order of their ids (PostgreSQL ``FOR UPDATE``; on SQLite the first write takes the
database's write lock), then read again: a group's ticket that was itself linked
meanwhile is followed to its new group, and the counts are recounted from the rows, never
incremented.  Two agents linking the same ticket: one wins, the other gets a
VersionConflict.

Speed.  The index is a two-column key (``term``, ``ticket_id``): tickets' ids grow with
their creation, so "created in the window" is "id at least the first id of the window",
a range of that key.  A suggestion first counts, per term, its postings in the window up
to :data:`COMMON`; terms found that often say little of one matter (the topic's own
words, "ngap nuoc") and only their newest postings are read; the rest are summed per
ticket in SQL, weighted by rarity, so the work is bounded whatever the table's size
(``bench/similar_reports.py``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    CompoundSelect,
    Float,
    Select,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.identity import SYSTEM, Actor
from core.clock import Clock
from core.db import Database
from core.settings import Settings
from tickets.exceptions import (
    IN_GROUP,
    NOT_LINKED,
    SAME_TICKET,
    UNKNOWN,
    Forbidden,
    InvalidInput,
    VersionConflict,
)
from tickets.models import ResultCall, Status, Ticket, TicketEvent, TicketTerm
from tickets.queries import load_ticket, visible_to
from tickets.result_calls import LEVELS, add_call
from tickets.schemas import normalize_phone
from tickets.terms import terms
from tickets.workflow import STAFF, may_link

if TYPE_CHECKING:
    from tickets.service import TicketService

log = logging.getLogger(__name__)

# history lines (tickets.service.Action lists them too)
LINKED = "linked"  # on the ticket linked (and on the ones that moved with it)
UNLINKED = "unlinked"
REPEAT_ADDED = "repeat_added"  # on the group's ticket: one more report of the matter
REPEAT_REMOVED = "repeat_removed"
FLAGGED = "repeat_flagged"
ANSWERED = "answered"
ALERTS = "alerts"

# postings of one term read at most (its newest): a term found more often in the window
# names the kind of matter rather than this one (see the module's docstring)
COMMON = 2000
# the words of a draft looked at (its first ones)
QUERY_TERMS = 16
# tickets scored on their words, best first, before the rest of the ranking
CANDIDATES = 40
# the caller's own earlier reports looked at
BY_PHONE = 10
DEFAULT_LIMIT = 5
MAX_LIMIT = 20
# a suggestion needs this share of the draft's word weight, or the same phone
MIN_TEXT = 0.3
# what the rest adds to the rank
PHONE_BONUS = 0.5
TOPIC_BONUS = 0.15
DISTRICT_BONUS = 0.15

# statuses in which a group's member takes the group's result (levels 2 and 3: those
# whose citizen is told a result, tickets.result_calls.LEVELS)
SHAREABLE = (
    Status.NEW,
    Status.PENDING_APPROVAL,
    Status.FORWARDED,
    Status.ACCEPTED,
    Status.RETURNED,
    Status.REOPENED,
)
# a group whose ticket is here is resolved: it is not flagged
RESOLVED = (Status.ANSWERED, Status.CLOSED)


def _json(value: dict[str, Any]) -> str:
    def default(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.astimezone(UTC).isoformat()
        raise TypeError(type(v).__name__)

    return json.dumps(value, ensure_ascii=False, default=default, sort_keys=True)


def _event(
    ticket: Ticket, actor: Actor, action: str, details: dict[str, Any], at: datetime, **moves: Any
) -> TicketEvent:
    return TicketEvent(
        ticket_id=ticket.id,
        at=at,
        actor_id=actor.id,
        actor_name=actor.name,
        action=action,
        from_status=moves.get("from_status", ticket.status),
        to_status=moves.get("to_status", ticket.status),
        details=_json(details),
    )


# -- the index: written with the ticket ----------------------------------------------
async def index_terms(
    s: AsyncSession, ticket_id: int, new: Sequence[str], old: Sequence[str] = ()
) -> None:
    """Write a ticket's terms: ``new`` now, ``old`` before (the rows to drop)."""
    gone = set(old) - set(new)
    added = [t for t in dict.fromkeys(new) if t not in set(old)]
    if gone:
        await s.execute(
            delete(TicketTerm).where(
                TicketTerm.ticket_id == ticket_id, TicketTerm.term.in_(sorted(gone))
            )
        )
    if added:
        await s.execute(insert(TicketTerm), [{"term": t, "ticket_id": ticket_id} for t in added])


# -- group bookkeeping, in the caller's transaction -----------------------------------
async def _lock(s: AsyncSession, ids: Sequence[int]) -> None:
    """Lock the tickets ``ids`` for this transaction, in the order of their ids."""
    ordered = sorted(set(ids))
    if s.get_bind().dialect.name == "postgresql":
        await s.execute(
            select(Ticket.id).where(Ticket.id.in_(ordered)).order_by(Ticket.id).with_for_update()
        )
    # SQLite: the first write takes the database's write lock (and is a no-op on both)
    await s.execute(
        update(Ticket)
        .where(Ticket.id == ordered[0])
        .values(repeats=Ticket.repeats)
        .execution_options(synchronize_session=False)
    )


async def _reread(s: AsyncSession, ticket_id: int) -> Ticket:
    ticket = await s.scalar(
        select(Ticket).where(Ticket.id == ticket_id).execution_options(populate_existing=True)
    )
    if ticket is None:
        raise InvalidInput.one("repeat_of", UNKNOWN)
    return ticket


async def _recount(s: AsyncSession, lead_id: int) -> int:
    """Set the group's count from its rows; the number of reports (the group's ticket too)."""
    linked = select(func.count()).select_from(Ticket).where(Ticket.repeat_of == lead_id)
    n = (await s.scalar(linked)) or 0
    await s.execute(
        update(Ticket)
        .where(Ticket.id == lead_id)
        .values(repeats=n)
        .execution_options(synchronize_session=False)
    )
    return n + 1


async def flag(
    s: AsyncSession, settings: Settings, lead: Ticket, reports: int, now: datetime
) -> bool:
    """Flag the group's ticket for level 3 if the matter is reported often enough and not
    answered; once (the condition is re-checked in the UPDATE).  True if flagged now."""
    if reports < settings.tickets.repeat_flag_after or lead.status in RESOLVED:
        return False
    if lead.repeat_flagged_at is not None or lead.level >= 3:
        return False
    done = await s.execute(
        update(Ticket)
        .where(Ticket.id == lead.id, Ticket.repeat_flagged_at.is_(None))
        .values(repeat_flagged_at=now)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        return False
    s.add(_event(lead, SYSTEM, FLAGGED, {"reports": reports}, now))
    return True


@dataclass(frozen=True)
class Shared:
    """A member answered with its group's result, and its result call (if one is made)."""

    ticket: Ticket
    call: ResultCall | None


async def share_result(
    s: AsyncSession,
    settings: Settings,
    lead: Ticket,
    actor: Actor,
    now: datetime,
    only: Sequence[int] | None = None,
) -> list[Shared]:
    """Give the group's result to its open level-2/3 members (``only`` those), in the
    caller's transaction: each answered with it under its own version (read again and
    retried if a writer changed it meanwhile), a history line naming the group, and its
    result call (tickets.result_calls.add_call)."""
    if not lead.result:
        return []
    q = select(Ticket.id).where(
        Ticket.repeat_of == lead.id,
        Ticket.status.in_([st.value for st in SHAREABLE]),
        Ticket.level.in_(LEVELS),
    )
    if only is not None:
        q = q.where(Ticket.id.in_(list(only)))
    shared: list[Shared] = []
    for member_id in (await s.scalars(q.order_by(Ticket.id))).all():
        for _ in range(5):
            m = await _reread(s, member_id)
            if m.repeat_of != lead.id or m.status not in SHAREABLE or m.level not in LEVELS:
                break
            done = await s.execute(
                update(Ticket)
                .where(Ticket.id == m.id, Ticket.version == m.version)
                .values(
                    status=Status.ANSWERED.value,
                    result=lead.result,
                    version=m.version + 1,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                continue  # changed meanwhile (PostgreSQL): read it again
            details = {"result": lead.result, "group": lead.code, "by": actor.name}
            s.add(
                _event(
                    m,
                    actor,
                    ANSWERED,
                    details,
                    now,
                    from_status=m.status,
                    to_status=Status.ANSWERED.value,
                )
            )
            await s.flush()
            m = await _reread(s, member_id)
            shared.append(Shared(m, await add_call(s, settings, m, now)))
            break
        else:
            raise VersionConflict(member_id, 0, None)
    if shared:
        log.info("ticket %s: result shared with %d repeats", lead.code, len(shared))
    return shared


# -- suggestions ------------------------------------------------------------------------
@dataclass(frozen=True)
class Draft:
    """What is known of a report being written (or of a ticket): what is compared."""

    description: str | None = None
    citizen_address: str | None = None
    citizen_phone: str | None = None
    topic: str | None = None
    district: str | None = None


@dataclass(frozen=True)
class Suggestion:
    """An earlier report (a group's ticket, or a report in no group) likely the same."""

    ticket: Ticket
    reports: int  # in its group (1: none linked yet)
    score: float
    # why: "phone", "text", "topic", "district"
    reasons: tuple[str, ...]


def _phone(raw: str | None) -> str | None:
    try:
        return normalize_phone(raw)
    except ValueError:  # not a phone number (yet): no match by phone
        return None


def _postings(term: str, first: int) -> Select[Any]:
    """The newest :data:`COMMON` tickets of the window with ``term`` (all of a rarer term)."""
    return (
        select(TicketTerm.ticket_id)
        .where(TicketTerm.term == term, TicketTerm.ticket_id >= first)
        .order_by(TicketTerm.ticket_id.desc())
        .limit(COMMON)
    )


def _one(parts: list[Select[Any]]) -> Select[Any] | CompoundSelect[Any]:
    return parts[0] if len(parts) == 1 else union_all(*parts)


async def _text_scores(
    s: AsyncSession, words: list[str], first: int, last: int, extra: set[int]
) -> tuple[dict[int, float], float]:
    """Tickets from id ``first`` sharing terms with ``words`` (and the tickets ``extra``):
    their summed weights, and the draft's own total (what a report with every term would
    score).

    Two statements, each of a shape that depends only on the number of terms (so compiled
    once and cached).  The first reads each term's postings (its newest :data:`COMMON`),
    and answers how many each term has and the candidates, ranked by the sum of
    ``1 / postings`` of their terms; the second reads the candidates' exact scores from
    the key: their common terms count too, however old they are.
    """
    postings = _one(
        [
            select(literal_column(str(i)).label("k"), sub.c.ticket_id)
            for i, sub in ((i, _postings(t, first).subquery()) for i, t in enumerate(words))
        ]
    ).cte("p")
    df = select(postings.c.k, func.count().label("n")).group_by(postings.c.k).cte("df")
    score = func.sum(literal(1.0, Float) / df.c.n).label("score")
    ranked = (
        select(postings.c.ticket_id, score)
        .join(df, df.c.k == postings.c.k)
        .group_by(postings.c.ticket_id)
        .order_by(score.desc(), postings.c.ticket_id.desc())
        .limit(CANDIDATES)
        .subquery()
    )
    both = union_all(
        select(literal_column("0").label("kind"), df.c.k.label("x"), cast(df.c.n, Float)),
        select(literal_column("1"), ranked.c.ticket_id, ranked.c.score),
    )
    counts: dict[int, int] = {}
    candidates = set(extra)
    for kind, x, v in (await s.execute(both)).all():
        if int(kind) == 0:
            counts[int(x)] = int(v)
        else:
            candidates.add(int(x))
    size = max(1, last - first + 1)
    weight = {t: math.log(1 + size / (1 + counts.get(i, 0))) for i, t in enumerate(words)}
    total = sum(weight.values())
    found = [t for i, t in enumerate(words) if counts.get(i)]
    if not found or not candidates:
        return {}, total
    rows = await s.execute(
        select(TicketTerm.ticket_id, TicketTerm.term).where(
            TicketTerm.term.in_(found), TicketTerm.ticket_id.in_(sorted(candidates))
        )
    )
    scores: dict[int, float] = {}
    for tid, term in rows.all():
        scores[tid] = scores.get(tid, 0.0) + weight[term]
    return scores, total


class RepeatService:
    """Suggestions, linking and unlinking; one short session each."""

    def __init__(
        self, db: Database, settings: Settings, clock: Clock, tickets: TicketService
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        # answered members are announced as the ticket service's own answers are
        self.tickets = tickets
        # called after the commit with the group's ticket just flagged for level 3 and
        # its number of reports (the composition root publishes the alert)
        self.on_flagged: list[Callable[[Ticket, int], Awaitable[None]]] = []

    def since(self) -> datetime:
        return self.clock.now() - timedelta(days=self.settings.tickets.repeat_window_days)

    # -- reading -----------------------------------------------------------------------
    async def suggest(
        self,
        actor: Actor,
        draft: Draft,
        *,
        limit: int = DEFAULT_LIMIT,
        before: Ticket | None = None,
    ) -> list[Suggestion]:
        """Earlier reports likely of the same matter as ``draft``, best first (staff).

        With ``before`` (a ticket's own page) only reports older than it, outside its
        group.  A report in a group is offered as its group's ticket.
        """
        if actor.role not in STAFF:
            raise Forbidden("suggest", actor.role)
        limit = max(1, min(limit, MAX_LIMIT))
        words = terms(draft.description, draft.citizen_address)[:QUERY_TERMS]
        phone = _phone(draft.citizen_phone)
        if not words and not phone:
            return []
        since = self.since()
        async with self.db.session() as s:
            window = (
                await s.execute(
                    select(
                        select(Ticket.id)
                        .where(Ticket.created_at >= since)
                        .order_by(Ticket.created_at, Ticket.id)
                        .limit(1)
                        .scalar_subquery(),
                        select(func.max(Ticket.id)).scalar_subquery(),
                    )
                )
            ).one()
            first, last = window
            if first is None:
                return []
            by_phone: set[int] = set()
            if phone:
                by_phone = set(
                    (
                        await s.scalars(
                            select(Ticket.id)
                            .where(Ticket.citizen_phone == phone, Ticket.id >= first)
                            .order_by(Ticket.id.desc())
                            .limit(BY_PHONE)
                        )
                    ).all()
                )
            text: dict[int, float] = {}
            total = 1.0
            if words:
                text, total = await _text_scores(s, words, first, last, by_phone)
            ids = set(text) | by_phone
            if before is not None:
                ids = {i for i in ids if i < before.id}
            if not ids:
                return []
            # what the ranking needs of each candidate; whole tickets only for those
            # suggested.  By id alone: the id is the key (a condition on the time could
            # make the planner walk the time's index instead); the window is checked here
            rows = [
                r
                for r in (
                    await s.execute(
                        select(
                            Ticket.id,
                            Ticket.topic,
                            Ticket.district,
                            Ticket.repeat_of,
                            Ticket.created_at,
                        ).where(Ticket.id.in_(sorted(ids)))
                    )
                ).all()
                if r.created_at >= since
            ]
            ranked: dict[int, tuple[float, tuple[str, ...]]] = {}
            own_group = None
            if before is not None:
                own_group = before.repeat_of or before.id
            for t in rows:
                share = text.get(t.id, 0.0) / total if total else 0.0
                reasons: list[str] = []
                score = share
                if t.id in by_phone:
                    reasons.append("phone")
                    score += PHONE_BONUS
                if share >= MIN_TEXT:
                    reasons.append("text")
                if "phone" not in reasons and "text" not in reasons:
                    continue
                if draft.topic and t.topic == draft.topic:
                    reasons.append("topic")
                    score += TOPIC_BONUS
                if draft.district and t.district and t.district == draft.district:
                    reasons.append("district")
                    score += DISTRICT_BONUS
                group = t.repeat_of or t.id
                if group == own_group:
                    continue
                best = ranked.get(group)
                if best is None or score > best[0]:
                    ranked[group] = (score, tuple(reasons))
            best_groups = sorted(ranked.items(), key=lambda kv: (-kv[1][0], -kv[0]))[:limit]
            if not best_groups:
                return []
            wanted = [g for g, _ in best_groups]
            leads = {
                t.id: t
                for t in (
                    await s.scalars(
                        # a restricted report is suggested only to those cleared for it
                        select(Ticket).where(
                            Ticket.id.in_(wanted), visible_to(actor, self.settings.tickets)
                        )
                    )
                ).all()
            }
        return [
            Suggestion(leads[g], (leads[g].repeats or 0) + 1, round(score, 3), reasons)
            for g, (score, reasons) in best_groups
            if g in leads
        ]

    async def similar_to(
        self, actor: Actor, ticket: Ticket, *, limit: int = DEFAULT_LIMIT
    ) -> list[Suggestion]:
        """Suggestions for an existing ticket (one that came by SMS, email, the web)."""
        draft = Draft(
            description=ticket.description,
            citizen_address=ticket.citizen_address,
            citizen_phone=ticket.citizen_phone,
            topic=ticket.topic,
            district=ticket.district,
        )
        return await self.suggest(actor, draft, limit=limit, before=ticket)

    async def group(
        self, ticket: Ticket, actor: Actor | None = None
    ) -> tuple[Ticket, list[Ticket]]:
        """The ticket's group: its ticket and the reports linked to it, oldest first
        (with ``actor``: only the reports the actor may see)."""
        seen = visible_to(actor, self.settings.tickets) if actor is not None else true()
        async with self.db.session() as s:
            lead = await load_ticket(s, ticket.repeat_of) if ticket.repeat_of else ticket
            members = (
                await s.scalars(
                    select(Ticket).where(Ticket.repeat_of == lead.id, seen).order_by(Ticket.id)
                )
            ).all()
        return lead, list(members)

    # -- writing -----------------------------------------------------------------------
    async def link(self, actor: Actor, ticket_id: int, version: int, target_id: int) -> Ticket:
        """Link the ticket to the earlier report ``target_id`` (to its group).

        Supervisors and admins; the agent who created the ticket.  The reports already
        linked to the ticket move with it; a group already answered gives its result at
        once.  InvalidInput on ``repeat_of``: unknown, the ticket itself, or already in
        its group.  The group is flagged for level 3 when it reaches the setting's size.
        """
        for _ in range(3):
            outcome = await self._link_once(actor, ticket_id, version, target_id)
            if outcome is not None:
                ticket, flagged, reports, shared = outcome
                await self._after(flagged, reports, shared)
                return ticket
        raise VersionConflict(ticket_id, version, None)

    async def _link_once(
        self, actor: Actor, ticket_id: int, version: int, target_id: int
    ) -> tuple[Ticket, Ticket | None, int, list[Shared]] | None:
        async with self.db.session() as s:
            ticket = await load_ticket(s, ticket_id)
            if not may_link(actor, ticket):
                raise Forbidden("link", actor.role)
            if ticket.version != version:
                raise VersionConflict(ticket.id, version, ticket.version)
            target = await s.get(Ticket, target_id)
            if target is None:
                raise InvalidInput.one("repeat_of", UNKNOWN)
            if target.id == ticket.id:
                raise InvalidInput.one("repeat_of", SAME_TICKET)
            lead_id = target.repeat_of or target.id
            if lead_id == ticket.id or lead_id == ticket.repeat_of:
                raise InvalidInput.one("repeat_of", IN_GROUP)
            old_lead_id = ticket.repeat_of
            await _lock(s, [i for i in (ticket.id, lead_id, old_lead_id) if i is not None])
            ticket = await _reread(s, ticket.id)
            lead = await _reread(s, lead_id)
            if ticket.version != version:
                raise VersionConflict(ticket.id, version, ticket.version)
            if lead.repeat_of is not None or ticket.repeat_of != old_lead_id:
                return None  # a group changed before the lock: look again
            now = self.clock.now()
            done = await s.execute(
                update(Ticket)
                .where(Ticket.id == ticket.id, Ticket.version == version)
                .values(repeat_of=lead.id, repeats=0, version=version + 1, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise VersionConflict(ticket.id, version, None)
            moved = (
                await s.scalars(
                    select(Ticket).where(Ticket.repeat_of == ticket.id).order_by(Ticket.id)
                )
            ).all()
            if moved:
                await s.execute(
                    update(Ticket)
                    .where(Ticket.repeat_of == ticket.id)
                    .values(repeat_of=lead.id)
                    .execution_options(synchronize_session=False)
                )
            old_lead = await _reread(s, old_lead_id) if old_lead_id is not None else None
            details: dict[str, Any] = {
                "repeat_of": [old_lead.code if old_lead else None, lead.code]
            }
            if moved:
                details["moved"] = ", ".join(m.code for m in moved)
            s.add(_event(ticket, actor, LINKED, details, now))
            for m in moved:
                s.add(_event(m, actor, LINKED, {"repeat_of": [ticket.code, lead.code]}, now))
            reports = await _recount(s, lead.id)
            for t in (ticket, *moved):
                s.add(
                    _event(lead, actor, REPEAT_ADDED, {"ticket": t.code, "reports": reports}, now)
                )
            if old_lead is not None:
                left = await _recount(s, old_lead.id)
                s.add(
                    _event(
                        old_lead,
                        actor,
                        REPEAT_REMOVED,
                        {"ticket": ticket.code, "reports": left},
                        now,
                    )
                )
            lead = await _reread(s, lead.id)
            flagged = lead if await flag(s, self.settings, lead, reports, now) else None
            shared: list[Shared] = []
            if lead.status in RESOLVED and lead.result:
                shared = await share_result(
                    s, self.settings, lead, actor, now, only=[ticket.id, *(m.id for m in moved)]
                )
            await s.flush()
            ticket = await _reread(s, ticket.id)
        log.info(
            "ticket %s linked to %s by %s (%d reports)", ticket.code, lead.code, actor.name, reports
        )
        return ticket, flagged, reports, shared

    async def unlink(self, actor: Actor, ticket_id: int, version: int) -> Ticket:
        """Take the ticket out of its group (who may link it).  InvalidInput on
        ``repeat_of`` when it is in none, or is the group's ticket."""
        for _ in range(3):
            ticket = await self._unlink_once(actor, ticket_id, version)
            if ticket is not None:
                return ticket
        raise VersionConflict(ticket_id, version, None)

    async def _unlink_once(self, actor: Actor, ticket_id: int, version: int) -> Ticket | None:
        async with self.db.session() as s:
            ticket = await load_ticket(s, ticket_id)
            if not may_link(actor, ticket):
                raise Forbidden("unlink", actor.role)
            if ticket.version != version:
                raise VersionConflict(ticket.id, version, ticket.version)
            if ticket.repeat_of is None:
                raise InvalidInput.one("repeat_of", NOT_LINKED)
            lead_id = ticket.repeat_of
            await _lock(s, [ticket.id, lead_id])
            ticket = await _reread(s, ticket.id)
            if ticket.version != version:
                raise VersionConflict(ticket.id, version, ticket.version)
            if ticket.repeat_of is None:
                raise InvalidInput.one("repeat_of", NOT_LINKED)
            if ticket.repeat_of != lead_id:
                return None  # its group joined another before the lock: look again
            lead = await _reread(s, lead_id)
            now = self.clock.now()
            done = await s.execute(
                update(Ticket)
                .where(Ticket.id == ticket.id, Ticket.version == version)
                .values(repeat_of=None, version=version + 1, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise VersionConflict(ticket.id, version, None)
            s.add(_event(ticket, actor, UNLINKED, {"repeat_of": [lead.code, None]}, now))
            left = await _recount(s, lead.id)
            s.add(
                _event(lead, actor, REPEAT_REMOVED, {"ticket": ticket.code, "reports": left}, now)
            )
            await s.flush()
            ticket = await _reread(s, ticket.id)
        log.info("ticket %s unlinked from %s by %s", ticket.code, lead.code, actor.name)
        return ticket

    async def _after(self, flagged: Ticket | None, reports: int, shared: list[Shared]) -> None:
        """After the commit: the alert, and the members answered told as answers are."""
        if flagged is not None:
            log.warning("ticket %s: reported %d times unresolved, flagged", flagged.code, reports)
            for hook in self.on_flagged:
                try:
                    await hook(flagged, reports)
                except Exception:  # noqa: BLE001 - the flag is written; the alert is a courtesy
                    log.exception("alerting of repeats of %s failed", flagged.code)
        for item in shared:
            await self.tickets.answered_elsewhere(item.ticket, item.call is not None)


def flag_alert(
    bus_publish: Callable[[str, dict[str, Any]], Awaitable[Any]],
    staff_topics: Callable[[Ticket], Awaitable[list[str]]] | None = None,
) -> Callable[[Ticket, int], Awaitable[None]]:
    """An ``on_flagged`` hook: the alert on the supervisors' topic ``alerts``, or on the
    topics ``staff_topics`` gives for the ticket (tickets.audience: a restricted report's
    alert only to the supervisors cleared for it)."""

    async def alert(ticket: Ticket, reports: int) -> None:
        topics = await staff_topics(ticket) if staff_topics is not None else [ALERTS]
        for topic in topics:
            await bus_publish(
                topic,
                {
                    "type": "repeats",
                    "code": ticket.code,
                    "reports": reports,
                    "level": ticket.level,
                    "topic": ticket.topic,
                    "status": ticket.status,
                    "district": ticket.district,
                },
            )

    return alert
