"""Quality grading: scorecards, the graders' work list, grades, comments and disputes.

The steps, in the order a week goes:

1. An admin defines a scorecard (:meth:`QaService.create_scorecard`); editing it adds
   a version (:meth:`QaService.edit_scorecard`), and a grade keeps the one it used.
2. Supervisors flag calls for grading as they meet them (:meth:`QaService.flag`).
3. The weekly draw (:meth:`QaService.run_draw`) adds to the work list the calls whose
   report was reopened or that the citizen rated low in the week, then draws
   ``[qa] calls_per_agent`` answered, recorded calls per agent at random
   (:func:`qa.sampling.draw`, by shift).  The draw is stored with its seed and pool:
   :meth:`QaService.verify_draw` runs it again and compares.  A call is in the list
   once at most (a unique key), whichever way it came.
4. Graders grade on the replay page (:meth:`QaService.grade`) and leave comments at
   moments of the recording (:meth:`QaService.comment`); a second grader on the same
   call gives the calibration view its figures (:meth:`QaService.calibration`).
5. The agent reads their grades and may dispute each once (:meth:`QaService.dispute`);
   a supervisor upholds the grade or sets another score (:meth:`QaService.resolve`).

Each method has its own short session; who may do what is checked here.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.exc import IntegrityError

from accounts.identity import Actor
from accounts.models import Role
from callcenter.models import Call, Direction, Outcome
from core.clock import Clock, local_midnight
from core.db import Database
from core.settings import Settings
from qa.exceptions import QaConflict, QaNotFound
from qa.models import (
    Comment,
    DisputeState,
    Draw,
    Grade,
    Reason,
    Sample,
    Scorecard,
    ScorecardVersion,
)
from qa.sampling import PoolCall, draw
from qa.scoring import Criterion, agreement, check_criteria, check_marks, criteria_from, score
from tickets.confidential import restricted_clause
from tickets.exceptions import NOT_ALLOWED, TOO_LONG, FieldError, InvalidInput
from tickets.models import Rating, RatingSource, Ticket, TicketEvent
from tickets.schemas import check_text

log = logging.getLogger(__name__)

MAX_TEXT = 2000
MAX_SECONDS = 6 * 3600


def week_of(day: date) -> date:
    """The Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())


def _text(value: object, name: str, *, required: bool) -> str | None:
    """Free text stripped and checked (length, no NUL) as the tickets' notes are."""
    return check_text(name, value, MAX_TEXT, required=required)


@dataclass
class CardView:
    """A scorecard with its newest version."""

    id: int
    name: str
    active: bool
    version_id: int
    version: int
    criteria: list[Criterion]
    versions: int


@dataclass
class GradeView:
    grade: Grade
    criteria: list[Criterion]
    marks: dict[str, int | None]
    card_name: str
    version: int


@dataclass
class WorkItem:
    sample: Sample
    call: Call
    grades: int
    mine: bool


@dataclass
class CalibrationCall:
    call: Call
    graders: list[str]
    scores: list[float]
    # per criterion: (criterion, marks by grader in the order of ``graders``, agreement)
    rows: list[tuple[Criterion, list[int | None], float | None]]


@dataclass
class QualityRow:
    key: str  # an agent's extension, team id, shift id or criterion id
    period: date  # the Monday of the week
    grades: int
    average: float | None
    fatal: int
    extra: dict[str, Any] = field(default_factory=dict)


GROUPS = ("agent", "team", "shift", "criterion")


class QaService:
    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock

    # -- who ------------------------------------------------------------------------

    def may_grade(self, actor: Actor | None) -> bool:
        return actor is not None and actor.role.value in self.settings.qa.graders

    def may_resolve(self, actor: Actor | None) -> bool:
        return actor is not None and actor.role in (Role.SUPERVISOR, Role.ADMIN)

    def _need(self, allowed: bool, action: str, actor: Actor) -> None:
        if not allowed:
            raise PermissionError(f"{actor.role} may not {action}")

    # -- scorecards -----------------------------------------------------------------

    async def scorecards(self, *, active_only: bool = False) -> list[CardView]:
        async with self.db.session() as s:
            cards = list((await s.execute(select(Scorecard).order_by(Scorecard.id))).scalars())
            found = []
            for card in cards:
                if active_only and not card.active:
                    continue
                versions = list(
                    (
                        await s.execute(
                            select(ScorecardVersion)
                            .where(ScorecardVersion.scorecard_id == card.id)
                            .order_by(ScorecardVersion.version.desc())
                        )
                    ).scalars()
                )
                newest = versions[0]
                found.append(
                    CardView(
                        card.id,
                        card.name,
                        card.active,
                        newest.id,
                        newest.version,
                        criteria_from(json.loads(newest.criteria)),
                        len(versions),
                    )
                )
            return found

    async def scorecard(self, scorecard_id: int) -> CardView:
        for card in await self.scorecards():
            if card.id == scorecard_id:
                return card
        raise QaNotFound("scorecard", scorecard_id)

    async def create_scorecard(self, actor: Actor, name: object, criteria: object) -> CardView:
        """A new scorecard (admins): its version 1."""
        self._need(actor.role == Role.ADMIN, "define scorecards", actor)
        errors: list[FieldError] = []
        title = checked = None
        try:
            title = _text(name, "name", required=True)
            if title is not None and len(title) > 200:
                raise InvalidInput.one("name", TOO_LONG, max=200)
        except InvalidInput as e:
            errors += e.errors
        try:
            checked = check_criteria(criteria)
        except InvalidInput as e:
            errors += e.errors
        if errors:
            raise InvalidInput(errors)
        assert title is not None and checked is not None
        now = self.clock.now()
        async with self.db.session() as s:
            card = Scorecard(name=title, active=True, created_at=now)
            s.add(card)
            await s.flush()
            s.add(self._version(card.id, 1, checked, actor, now))
        return await self.scorecard(card.id)

    async def edit_scorecard(
        self,
        actor: Actor,
        scorecard_id: int,
        *,
        name: object = None,
        criteria: object = None,
        active: bool | None = None,
    ) -> CardView:
        """A changed scorecard: new criteria make a new version (grades keep theirs)."""
        self._need(actor.role == Role.ADMIN, "define scorecards", actor)
        now = self.clock.now()
        title = _text(name, "name", required=False)
        checked = check_criteria(criteria) if criteria is not None else None
        async with self.db.session() as s:
            card = await s.get(Scorecard, scorecard_id, with_for_update=True)
            if card is None:
                raise QaNotFound("scorecard", scorecard_id)
            if title is not None:
                card.name = title[:200]
            if active is not None:
                card.active = active
            if checked is not None:
                newest = (
                    await s.execute(
                        select(ScorecardVersion)
                        .where(ScorecardVersion.scorecard_id == card.id)
                        .order_by(ScorecardVersion.version.desc())
                        .limit(1)
                    )
                ).scalar_one()
                if json.loads(newest.criteria) != [c.as_dict() for c in checked]:
                    s.add(self._version(card.id, newest.version + 1, checked, actor, now))
        return await self.scorecard(scorecard_id)

    @staticmethod
    def _version(
        card_id: int, number: int, criteria: list[Criterion], actor: Actor, now: datetime
    ) -> ScorecardVersion:
        return ScorecardVersion(
            scorecard_id=card_id,
            version=number,
            criteria=json.dumps([c.as_dict() for c in criteria], ensure_ascii=False),
            created_at=now,
            created_by=actor.name,
        )

    # -- the work list --------------------------------------------------------------

    async def flag(self, actor: Actor, call_id: int, note: object = None) -> Sample:
        """A supervisor puts a call in the work list (once: a second flag is a conflict)."""
        self._need(self.may_resolve(actor) or self.may_grade(actor), "flag calls", actor)
        text = _text(note, "note", required=False)
        async with self.db.session() as s:
            call = await s.get(Call, call_id)
            if call is None:
                raise QaNotFound("call", call_id)
            if call.outcome != Outcome.ANSWERED or not call.agent_extension:
                raise QaConflict("not_answered", "only a call an agent answered can be graded")
        return await self._add_sample(call, Reason.FLAGGED, actor.name, note=text)

    async def _add_sample(
        self, call: Call, reason: Reason, by: str, *, note: str | None = None
    ) -> Sample:
        sample = Sample(
            call_id=call.id,
            reason=reason.value,
            agent_extension=call.agent_extension,
            shift_id=call.shift_id,
            note=note,
            added_at=self.clock.now(),
            added_by=by,
        )
        try:
            async with self.db.session() as s:
                s.add(sample)
        except IntegrityError:
            raise QaConflict("already_listed", "the call is already in the work list") from None
        return sample

    def _week_bounds(self, week: date) -> tuple[datetime, datetime]:
        monday = week_of(week)
        return (
            local_midnight(monday, self.settings.tz),
            local_midnight(monday + timedelta(days=7), self.settings.tz),
        )

    def _gradable(self) -> Any:
        return and_(
            Call.outcome == Outcome.ANSWERED,
            Call.direction == Direction.INBOUND,
            Call.agent_extension.is_not(None),
            or_(Call.recording_base.is_not(None), Call.recording_caller.is_not(None)),
            # a call of a restricted report (tickets.confidential) is no grader's to hear
            ~exists()
            .where(Ticket.call_id == Call.id, restricted_clause(self.settings.tickets))
            .correlate(Call),
        )

    async def run_draw(self, actor: Actor, week: date, seed: str | None = None) -> Draw:
        """The week's draw (once per week): reopened and low-rated calls, then the random
        picks per agent and shift among the week's other answered, recorded calls."""
        self._need(self.may_resolve(actor), "draw calls", actor)
        monday = week_of(week)
        seed = seed or secrets.token_hex(16)
        try:
            return await self._draw(actor, monday, seed)
        except IntegrityError:
            # another draw of the week, or a flag of one of its calls, got in first
            raise QaConflict("drawn", "the work list changed meanwhile: try again") from None

    async def _draw(self, actor: Actor, monday: date, seed: str) -> Draw:
        start, end = self._week_bounds(monday)
        qa = self.settings.qa
        async with self.db.session() as s:
            if (await s.execute(select(Draw.id).where(Draw.week == monday))).first():
                raise QaConflict("drawn", f"the week of {monday.isoformat()} is already drawn")
            listed = set((await s.execute(select(Sample.call_id))).scalars())
            reopened = list(
                (
                    await s.execute(
                        select(Call)
                        .join(Ticket, Ticket.call_id == Call.id)
                        .join(TicketEvent, TicketEvent.ticket_id == Ticket.id)
                        .where(
                            TicketEvent.action == "reopened",
                            TicketEvent.at >= start,
                            TicketEvent.at < end,
                            self._gradable(),
                        )
                        .order_by(Call.id)
                    )
                )
                .scalars()
                .unique()
            )
            low = list(
                (
                    await s.execute(
                        select(Call)
                        .join(Rating, Rating.call_id == Call.id)
                        .where(
                            Rating.source == RatingSource.AFTER_CALL,
                            Rating.rating <= qa.low_rating,
                            Rating.at >= start,
                            Rating.at < end,
                            self._gradable(),
                        )
                        .order_by(Call.id)
                    )
                )
                .scalars()
                .unique()
            )
            rows = (
                await s.execute(
                    select(Call.id, Call.agent_extension, Call.shift_id)
                    .where(
                        self._gradable(),
                        Call.started_at >= start,
                        Call.started_at < end,
                        func.coalesce(Call.talk_seconds, 0) >= qa.min_talk_seconds,
                    )
                    .order_by(Call.id)
                )
            ).all()
            now = self.clock.now()
            special: list[tuple[Call, Reason]] = []
            for call in reopened:
                if call.id not in listed:
                    listed.add(call.id)
                    special.append((call, Reason.REOPENED))
            for call in low:
                if call.id not in listed:
                    listed.add(call.id)
                    special.append((call, Reason.LOW_RATING))
            pool = [PoolCall(r[0], r[1], r[2] or "") for r in rows]
            picked = draw(pool, qa.calls_per_agent, seed, exclude=frozenset(listed))
            record = Draw(
                week=monday,
                seed=seed,
                calls_per_agent=qa.calls_per_agent,
                pool=json.dumps([[c.call_id, c.agent, c.shift] for c in pool]),
                excluded=json.dumps(sorted(c.call_id for c in pool if c.call_id in listed)),
                picked=json.dumps([c.call_id for c in picked]),
                created_at=now,
                created_by=actor.name,
            )
            s.add(record)
            await s.flush()
            for call, reason in special:
                s.add(
                    Sample(
                        call_id=call.id,
                        reason=reason.value,
                        draw_id=record.id,
                        agent_extension=call.agent_extension,
                        shift_id=call.shift_id,
                        added_at=now,
                        added_by=actor.name,
                    )
                )
            for c in picked:
                s.add(
                    Sample(
                        call_id=c.call_id,
                        reason=Reason.RANDOM.value,
                        draw_id=record.id,
                        agent_extension=c.agent,
                        shift_id=c.shift or None,
                        added_at=now,
                        added_by=actor.name,
                    )
                )
        log.info(
            "qa draw of week %s: %d random, %d reopened or low-rated (seed %s)",
            monday,
            len(picked),
            len(special),
            seed,
        )
        return record

    async def verify_draw(self, draw_id: int) -> bool:
        """Whether the stored draw gives the stored picks again from its pool, seed and
        the calls it left out as already listed."""
        async with self.db.session() as s:
            record = await s.get(Draw, draw_id)
            if record is None:
                raise QaNotFound("draw", draw_id)
        pool = [PoolCall(int(i), a, sh) for i, a, sh in json.loads(record.pool)]
        excluded = frozenset(int(i) for i in json.loads(record.excluded))
        again = draw(pool, record.calls_per_agent, record.seed, exclude=excluded)
        return [c.call_id for c in again] == json.loads(record.picked)

    async def draws(self) -> list[tuple[Draw, dict[str, int]]]:
        """The draws, newest first, with how many calls each added by reason."""
        async with self.db.session() as s:
            found = list((await s.execute(select(Draw).order_by(Draw.week.desc()))).scalars())
            counts = (
                await s.execute(
                    select(Sample.draw_id, Sample.reason, func.count())
                    .where(Sample.draw_id.is_not(None))
                    .group_by(Sample.draw_id, Sample.reason)
                )
            ).all()
        by: dict[int, dict[str, int]] = {}
        for draw_id, reason, n in counts:
            by.setdefault(draw_id, {})[reason] = n
        return [(d, by.get(d.id, {})) for d in found]

    async def work_list(self, actor: Actor, *, done: bool = False) -> list[WorkItem]:
        """The calls to grade: those no one graded yet (``done``: those graded)."""
        self._need(self.may_grade(actor), "grade calls", actor)
        async with self.db.session() as s:
            counts = (
                select(Grade.call_id, func.count().label("n")).group_by(Grade.call_id).subquery()
            )
            mine = {
                row
                for row in (
                    await s.execute(select(Grade.call_id).where(Grade.grader_id == actor.id))
                ).scalars()
            }
            n = func.coalesce(counts.c.n, 0)
            rows = (
                await s.execute(
                    select(Sample, Call, n)
                    .join(Call, Call.id == Sample.call_id)
                    .outerjoin(counts, counts.c.call_id == Sample.call_id)
                    .where(n > 0 if done else n == 0)
                    .order_by(Sample.added_at.desc(), Sample.id.desc())
                    .limit(500)
                )
            ).all()
        return [WorkItem(sample, call, count, call.id in mine) for sample, call, count in rows]

    async def sample_of(self, call_id: int) -> Sample | None:
        async with self.db.session() as s:
            return (
                await s.execute(select(Sample).where(Sample.call_id == call_id))
            ).scalar_one_or_none()

    # -- grades ---------------------------------------------------------------------

    async def grade(
        self,
        actor: Actor,
        call_id: int,
        version_id: int,
        marks: object,
        summary: object = None,
    ) -> Grade:
        """The grader's grade of a call (graders grade a call once each; grading again
        replaces their marks until the agent disputes it)."""
        self._need(self.may_grade(actor), "grade calls", actor)
        note = _text(summary, "summary", required=False)
        async with self.db.session() as s:
            call = await s.get(Call, call_id)
            if call is None:
                raise QaNotFound("call", call_id)
            if call.outcome != Outcome.ANSWERED or not call.agent_extension:
                raise QaConflict("not_answered", "only a call an agent answered can be graded")
            if actor.extension and actor.extension == call.agent_extension:
                raise PermissionError("a grader may not grade their own call")
            version = await s.get(ScorecardVersion, version_id)
            if version is None:
                raise QaNotFound("scorecard version", version_id)
            criteria = criteria_from(json.loads(version.criteria))
            checked = check_marks(criteria, marks)
            result = score(criteria, checked)
            existing = (
                await s.execute(
                    select(Grade)
                    .where(Grade.call_id == call_id, Grade.grader_id == actor.id)
                    .with_for_update()
                )
            ).scalar_one_or_none()
            if existing is not None and existing.dispute_state is not None:
                raise QaConflict("disputed", "a disputed grade is changed by resolving it")
            g = existing or Grade(
                call_id=call_id,
                grader_id=actor.id,
                agent_extension=call.agent_extension,
                team_id=call.team_id,
                shift_id=call.shift_id,
                call_started_at=call.started_at,
            )
            g.grader_name = actor.name
            g.version_id = version.id
            g.marks = json.dumps(checked)
            g.score = result.score
            g.fatal = result.fatal
            g.summary = note
            g.graded_at = self.clock.now()
            if existing is None:
                s.add(g)
        if await self.sample_of(call_id) is None:
            try:
                async with self.db.session() as s:
                    call = await s.get(Call, call_id)
                    assert call is not None
                await self._add_sample(call, Reason.FLAGGED, actor.name, note=None)
            except QaConflict:
                pass  # listed meanwhile
        return g

    async def grades_for_call(self, call_id: int) -> list[GradeView]:
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(Grade, ScorecardVersion, Scorecard)
                    .join(ScorecardVersion, ScorecardVersion.id == Grade.version_id)
                    .join(Scorecard, Scorecard.id == ScorecardVersion.scorecard_id)
                    .where(Grade.call_id == call_id)
                    .order_by(Grade.graded_at, Grade.id)
                )
            ).all()
        return [
            GradeView(
                g,
                criteria_from(json.loads(v.criteria)),
                json.loads(g.marks),
                card.name,
                v.version,
            )
            for g, v, card in rows
        ]

    async def get_grade(self, grade_id: int) -> GradeView:
        async with self.db.session() as s:
            g = await s.get(Grade, grade_id)
            if g is None:
                raise QaNotFound("grade", grade_id)
        for view in await self.grades_for_call(g.call_id):
            if view.grade.id == grade_id:
                return view
        raise QaNotFound("grade", grade_id)

    def may_see_grade(self, actor: Actor, grade: Grade) -> bool:
        """Graders and supervisors see every grade; an agent only those of their calls."""
        if self.may_grade(actor) or self.may_resolve(actor):
            return True
        return (
            actor.role == Role.AGENT
            and actor.extension is not None
            and grade.agent_extension == actor.extension
        )

    async def agent_grades(self, extension: str) -> list[tuple[Grade, Call]]:
        """An agent's graded calls, newest first."""
        async with self.db.session() as s:
            return [
                (g, c)
                for g, c in (
                    await s.execute(
                        select(Grade, Call)
                        .join(Call, Call.id == Grade.call_id)
                        .where(Grade.agent_extension == extension)
                        .order_by(Grade.graded_at.desc())
                        .limit(500)
                    )
                ).all()
            ]

    async def is_graded_for(self, call_id: int, extension: str | None) -> bool:
        """Whether ``call_id`` has a grade of the agent at ``extension`` (they may then
        open its replay page to read and hear what was graded)."""
        if not extension:
            return False
        async with self.db.session() as s:
            found = await s.execute(
                select(Grade.id)
                .where(Grade.call_id == call_id, Grade.agent_extension == extension)
                .limit(1)
            )
            return found.first() is not None

    # -- comments -------------------------------------------------------------------

    async def comment(self, actor: Actor, call_id: int, at: object, text: object) -> Comment:
        """A grader's remark at ``at`` seconds into the recording."""
        self._need(self.may_grade(actor), "comment on calls", actor)
        body = _text(text, "text", required=True)
        if isinstance(at, str):
            try:
                at = float(at)
            except ValueError:
                raise InvalidInput.one("at", NOT_ALLOWED) from None
        if (
            isinstance(at, bool)
            or not isinstance(at, int | float)
            or not 0 <= at <= MAX_SECONDS
            or at != at
        ):
            raise InvalidInput.one("at", NOT_ALLOWED)
        async with self.db.session() as s:
            if await s.get(Call, call_id) is None:
                raise QaNotFound("call", call_id)
            c = Comment(
                call_id=call_id,
                at_seconds=round(float(at), 2),
                text=body,
                author_id=actor.id,
                author_name=actor.name,
                created_at=self.clock.now(),
            )
            s.add(c)
        return c

    async def comments(self, call_id: int) -> list[Comment]:
        async with self.db.session() as s:
            return list(
                (
                    await s.execute(
                        select(Comment)
                        .where(Comment.call_id == call_id)
                        .order_by(Comment.at_seconds, Comment.id)
                    )
                ).scalars()
            )

    # -- disputes -------------------------------------------------------------------

    async def dispute(self, actor: Actor, grade_id: int, reason: object) -> Grade:
        """The graded agent disputes a grade, once, within ``[qa] dispute_days``."""
        text = _text(reason, "reason", required=True)
        now = self.clock.now()
        async with self.db.session() as s:
            g = await s.get(Grade, grade_id, with_for_update=True)
            if g is None:
                raise QaNotFound("grade", grade_id)
            if actor.role != Role.AGENT or not actor.extension:
                raise PermissionError("only the graded agent disputes a grade")
            if g.agent_extension != actor.extension:
                raise QaNotFound("grade", grade_id)  # not theirs: as if there were none
            if g.dispute_state is not None:
                raise QaConflict("disputed", "this grade was already disputed")
            if now > g.graded_at + timedelta(days=self.settings.qa.dispute_days):
                raise QaConflict("too_late", "the time to dispute this grade is over")
            g.dispute_state = DisputeState.OPEN.value
            g.dispute_reason = text
            g.disputed_at = now
        return g

    async def resolve(
        self, actor: Actor, grade_id: int, note: object, new_score: object = None
    ) -> Grade:
        """A supervisor answers a dispute: without ``new_score`` the grade stands
        (upheld); with one (0 to 100) it replaces the score (changed; the original is
        kept).  ``note`` is the answer the agent reads."""
        self._need(self.may_resolve(actor), "resolve disputes", actor)
        text = _text(note, "note", required=True)
        value: float | None = None
        if new_score is not None and new_score != "":
            if isinstance(new_score, bool):
                raise InvalidInput.one("score", NOT_ALLOWED)
            try:
                value = float(str(new_score).replace(",", "."))
            except ValueError:
                raise InvalidInput.one("score", NOT_ALLOWED) from None
            if not 0 <= value <= 100:
                raise InvalidInput.one("score", NOT_ALLOWED)
        async with self.db.session() as s:
            g = await s.get(Grade, grade_id, with_for_update=True)
            if g is None:
                raise QaNotFound("grade", grade_id)
            if g.dispute_state != DisputeState.OPEN.value:
                raise QaConflict("not_open", "there is no open dispute of this grade")
            g.dispute_state = (DisputeState.UPHELD if value is None else DisputeState.CHANGED).value
            g.resolved_by = actor.name
            g.resolved_at = self.clock.now()
            g.resolution = text
            if value is not None:
                g.original_score = g.score
                g.score = round(value, 1)
        return g

    async def disputes(self, *, open_only: bool = True) -> list[tuple[Grade, Call]]:
        async with self.db.session() as s:
            q = select(Grade, Call).join(Call, Call.id == Grade.call_id)
            q = q.where(
                Grade.dispute_state == DisputeState.OPEN.value
                if open_only
                else Grade.dispute_state.is_not(None)
            )
            return [(g, c) for g, c in (await s.execute(q.order_by(Grade.disputed_at))).all()]

    # -- calibration ----------------------------------------------------------------

    async def calibration(self, since: datetime | None = None) -> list[CalibrationCall]:
        """Calls graded by two graders or more with one scorecard version: their marks
        side by side and, per criterion, the share of grader pairs that agree."""
        async with self.db.session() as s:
            q = (
                select(Grade.call_id, Grade.version_id)
                .group_by(Grade.call_id, Grade.version_id)
                .having(func.count() >= 2)
            )
            if since is not None:
                q = q.where(Grade.graded_at >= since)
            pairs = (await s.execute(q.order_by(Grade.call_id.desc()).limit(200))).all()
            found = []
            for call_id, version_id in pairs:
                call = await s.get(Call, call_id)
                version = await s.get(ScorecardVersion, version_id)
                assert call is not None and version is not None
                grades = list(
                    (
                        await s.execute(
                            select(Grade)
                            .where(Grade.call_id == call_id, Grade.version_id == version_id)
                            .order_by(Grade.id)
                        )
                    ).scalars()
                )
                criteria = criteria_from(json.loads(version.criteria))
                marks = [json.loads(g.marks) for g in grades]
                rows = [
                    (c, [m.get(c.id) for m in marks], agreement([m.get(c.id) for m in marks]))
                    for c in criteria
                ]
                found.append(
                    CalibrationCall(
                        call, [g.grader_name for g in grades], [g.score for g in grades], rows
                    )
                )
        return found

    @staticmethod
    def agreement_by_criterion(calls: list[CalibrationCall]) -> list[tuple[str, float, int]]:
        """Over calibrated calls: (criterion label, average agreement, calls)."""
        seen: dict[str, list[float]] = {}
        for call in calls:
            for c, _marks, agreed in call.rows:
                if agreed is not None:
                    seen.setdefault(c.label, []).append(agreed)
        return [(label, sum(v) / len(v), len(v)) for label, v in seen.items()]

    # -- reports --------------------------------------------------------------------

    async def quality(self, start: datetime, end: datetime, by: str) -> list[QualityRow]:
        """Average scores of calls that started in [start, end), per week and ``by``
        (agent, team, shift, or criterion: a criterion's average mark as a share of
        full marks, 0 to 100).  A grade counts once per grader."""
        if by not in GROUPS:
            raise InvalidInput.one("by", NOT_ALLOWED)
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(Grade, ScorecardVersion.criteria)
                    .join(ScorecardVersion, ScorecardVersion.id == Grade.version_id)
                    .where(Grade.call_started_at >= start, Grade.call_started_at < end)
                )
            ).all()
        tz = self.settings.tz
        buckets: dict[tuple[str, date], list[float]] = {}
        fatal: dict[tuple[str, date], int] = {}
        for g, criteria_json in rows:
            week = week_of(g.call_started_at.astimezone(tz).date())
            if by == "criterion":
                from qa.scoring import MAX_MARK

                marks = json.loads(g.marks)
                for c in criteria_from(json.loads(criteria_json)):
                    m = marks.get(c.id)
                    if m is None:
                        continue
                    key = (c.label, week)
                    top = 1 if c.fatal else MAX_MARK
                    buckets.setdefault(key, []).append(100 * m / top)
                    if c.fatal and m == 0:
                        fatal[key] = fatal.get(key, 0) + 1
                continue
            name = {"agent": g.agent_extension, "team": g.team_id, "shift": g.shift_id}[by]
            key = (name or "", week)
            buckets.setdefault(key, []).append(g.score)
            if g.fatal:
                fatal[key] = fatal.get(key, 0) + 1
        return [
            QualityRow(k, w, len(v), round(sum(v) / len(v), 1) if v else None, fatal.get((k, w), 0))
            for (k, w), v in sorted(buckets.items(), key=lambda kv: (kv[0][1], kv[0][0]))
        ]
