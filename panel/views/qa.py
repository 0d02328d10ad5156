"""Panel pages of quality grading: scorecards, the work list, the weekly draw, grading
on the replay page, comments at a moment, disputes, calibration and the quality report.

The rules (who grades, who disputes, what a score is) are :mod:`qa.service`'s; these
handlers read forms, call it and redirect back with a flash message.  Grading itself
happens on the call's replay page (``panel/views/recordings.py`` asks
:func:`replay_values` for what that page shows).
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

from aiohttp import web

from accounts.identity import Actor
from panel.dates import parse_day
from panel.errors import PageError
from panel.keys import ACTOR, GETTEXT
from panel.security import forbidden, require
from panel.views.common import ctx, flash_redirect, form, render
from qa.exceptions import QaConflict
from qa.models import Reason
from qa.scoring import MAX_MARK
from qa.service import GROUPS, week_of
from recordings.replay import mmss
from tickets.exceptions import NOT_ALLOWED, REQUIRED, InvalidInput

MAX_ROWS = 30


def _reason_words(request: web.Request) -> dict[str, str]:
    _ = request[GETTEXT]
    return {
        Reason.RANDOM: _("drawn at random"),
        Reason.FLAGGED: _("flagged by a supervisor"),
        Reason.REOPENED: _("report reopened"),
        Reason.LOW_RATING: _("low rating"),
    }


def _problem(request: web.Request, e: Exception) -> str:
    """A refused step, in the reader's language."""
    _ = request[GETTEXT]
    if isinstance(e, InvalidInput):
        return "; ".join(f"{err.field}: {_(err.message, **(err.params or {}))}" for err in e.errors)
    if isinstance(e, QaConflict):
        return {
            "disputed": _("This grade was already disputed."),
            "too_late": _("The time to dispute this grade is over."),
            "not_open": _("There is no open dispute of this grade."),
            "already_listed": _("This call is already in the work list."),
            "drawn": _("This week is already drawn."),
            "not_answered": _("Only a call an agent answered can be graded."),
        }.get(e.reason, str(e))
    return str(e)


# -- what the replay page shows -------------------------------------------------------


async def replay_values(request: web.Request, call_id: int, agent_extension: str | None) -> dict:
    """The replay page's grading part: grades, comments, the grading form, the flag."""
    c = ctx(request)
    actor: Actor = request[ACTOR]
    grader = c.qa.may_grade(actor) and not (actor.extension and actor.extension == agent_extension)
    views = await c.qa.grades_for_call(call_id)
    if not grader and not c.qa.may_resolve(actor):
        views = [v for v in views if c.qa.may_see_grade(actor, v.grade)]
    cards = await c.qa.scorecards(active_only=True) if grader else []
    mine = next((v for v in views if v.grade.grader_id == actor.id), None)
    chosen = None
    if cards:
        wanted = request.query.get("card", "")
        if mine is not None:
            chosen = next((k for k in cards if k.version_id == mine.grade.version_id), None)
        if wanted.isdigit():
            chosen = next((k for k in cards if k.id == int(wanted)), chosen)
        chosen = chosen or cards[0]
    return {
        "qa_grades": views,
        "qa_comments": await c.qa.comments(call_id),
        "qa_grader": grader,
        "qa_resolver": c.qa.may_resolve(actor),
        "qa_cards": cards,
        "qa_card": chosen,
        "qa_mine": mine,
        "qa_sample": await c.qa.sample_of(call_id),
        "qa_reasons": _reason_words(request),
        "qa_max_mark": MAX_MARK,
        "qa_dispute_open": lambda g: (
            g.dispute_state is None
            and c.clock.now() <= g.graded_at + timedelta(days=c.settings.qa.dispute_days)
        ),
    }


# -- grading, comments, flags (posted from the replay page) ----------------------------


def _call_id(request: web.Request) -> int:
    return int(request.match_info["call_id"])


@require("supervisor", "admin")
async def grade(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    _ = request[GETTEXT]
    call_id = _call_id(request)
    data = await form(request)
    version = data.get("version_id", "")
    marks = {k[5:]: v for k, v in data.items() if k.startswith("mark_")}
    back = f"/recordings/{call_id}"
    try:
        g = await c.qa.grade(
            request[ACTOR],
            call_id,
            int(version) if version.isdigit() else 0,
            marks,
            data.get("summary"),
        )
    except (InvalidInput, QaConflict) as e:
        raise flash_redirect(back, _problem(request, e)) from None
    shown = f"{g.score:g}"
    raise flash_redirect(back, _("Graded: {score} of 100.", score=shown))


@require("supervisor", "admin")
async def add_comment(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    _ = request[GETTEXT]
    call_id = _call_id(request)
    data = await form(request)
    try:
        note = await c.qa.comment(request[ACTOR], call_id, data.get("at", ""), data.get("text"))
    except InvalidInput as e:
        raise flash_redirect(f"/recordings/{call_id}", _problem(request, e)) from None
    raise flash_redirect(
        f"/recordings/{call_id}?t={note.at_seconds:.2f}",
        _("Comment added at {at}.", at=mmss(note.at_seconds)),
    )


@require("supervisor", "admin")
async def flag(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    _ = request[GETTEXT]
    call_id = _call_id(request)
    data = await form(request)
    try:
        await c.qa.flag(request[ACTOR], call_id, data.get("note"))
    except (InvalidInput, QaConflict) as e:
        raise flash_redirect(f"/recordings/{call_id}", _problem(request, e)) from None
    raise flash_redirect(f"/recordings/{call_id}", _("The call is in the graders' work list."))


# -- disputes ---------------------------------------------------------------------------


@require("agent")
async def dispute(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    _ = request[GETTEXT]
    data = await form(request)
    grade_id = int(request.match_info["grade_id"])
    try:
        g = await c.qa.dispute(request[ACTOR], grade_id, data.get("reason"))
    except (InvalidInput, QaConflict) as e:
        view = await c.qa.get_grade(grade_id)
        if not c.qa.may_see_grade(request[ACTOR], view.grade):
            raise
        raise flash_redirect(f"/recordings/{view.grade.call_id}", _problem(request, e)) from None
    raise flash_redirect(f"/recordings/{g.call_id}", _("Your dispute was sent to a supervisor."))


@require("supervisor", "admin")
async def resolve(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    _ = request[GETTEXT]
    data = await form(request)
    grade_id = int(request.match_info["grade_id"])
    decision = data.get("decision", "upheld")
    score = data.get("score", "").strip() if decision == "changed" else None
    try:
        if decision not in ("upheld", "changed"):
            raise InvalidInput.one("decision", NOT_ALLOWED)
        if decision == "changed" and not score:
            raise InvalidInput.one("score", REQUIRED)
        g = await c.qa.resolve(request[ACTOR], grade_id, data.get("note"), score)
    except (InvalidInput, QaConflict) as e:
        view = await c.qa.get_grade(grade_id)
        raise flash_redirect(f"/recordings/{view.grade.call_id}", _problem(request, e)) from None
    raise flash_redirect(f"/recordings/{g.call_id}", _("The dispute is resolved."))


@require("supervisor", "admin")
async def disputes(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    show_all = request.query.get("all") == "1"
    return render(
        request,
        "qa_disputes.html",
        rows=await c.qa.disputes(open_only=not show_all),
        show_all=show_all,
        mmss=mmss,
    )


# -- the work list and the agent's own grades ----------------------------------------


@require("supervisor", "admin", "agent")
async def work_list(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    actor: Actor = request[ACTOR]
    if not c.qa.may_grade(actor):
        if actor.role == "agent":
            raise web.HTTPSeeOther("/qa/mine")
        raise forbidden(request)
    done = request.query.get("done") == "1"
    return render(
        request,
        "qa_work.html",
        items=await c.qa.work_list(actor, done=done),
        done=done,
        reasons=_reason_words(request),
        agent_names={a.extension: a.name for a in c.settings.agents},
        shift_names={s.id: s.name for s in c.settings.shifts},
        mmss=mmss,
    )


@require("agent")
async def my_grades(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    actor: Actor = request[ACTOR]
    rows = await c.qa.agent_grades(actor.extension) if actor.extension else []
    return render(request, "qa_mine.html", rows=rows, mmss=mmss)


# -- scorecards (admins) ----------------------------------------------------------------


def _criteria_from_form(data: Any) -> list[dict[str, Any]]:
    """The criteria rows of the scorecard form; rows without a label are left out."""
    rows = []
    for i in range(MAX_ROWS):
        label = (data.get(f"label_{i}") or "").strip()
        if not label:
            continue
        weight = (data.get(f"weight_{i}") or "").strip()
        rows.append(
            {
                "id": (data.get(f"id_{i}") or "").strip() or None,
                "label": label,
                "weight": int(weight) if weight.isdigit() else weight or None,
                "fatal": data.get(f"fatal_{i}") == "1",
            }
        )
    return rows


@require("admin")
async def scorecards(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    return render(
        request,
        "qa_scorecards.html",
        cards=await c.qa.scorecards(),
        card=None,
        rows=[{"id": "", "label": "", "weight": "", "fatal": False}] * 6,
        errors={},
    )


@require("admin")
async def scorecard_page(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    card = await c.qa.scorecard(int(request.match_info["card_id"]))
    rows = [c_.as_dict() for c_ in card.criteria]
    rows += [{"id": "", "label": "", "weight": "", "fatal": False}] * 3
    return render(
        request,
        "qa_scorecards.html",
        cards=await c.qa.scorecards(),
        card=card,
        rows=rows,
        errors={},
    )


@require("admin")
async def save_scorecard(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    _ = request[GETTEXT]
    data = await form(request)
    card_id = request.match_info.get("card_id")
    criteria = _criteria_from_form(data)
    try:
        if card_id is None:
            card = await c.qa.create_scorecard(request[ACTOR], data.get("name"), criteria)
        else:
            card = await c.qa.edit_scorecard(
                request[ACTOR],
                int(card_id),
                name=data.get("name"),
                criteria=criteria,
                active=data.get("active") == "1",
            )
    except InvalidInput as e:
        rows = criteria + [{"id": "", "label": "", "weight": "", "fatal": False}] * 3
        errors = {err.field: _(err.message, **(err.params or {})) for err in e.errors}
        return render(
            request,
            "qa_scorecards.html",
            status=422,
            cards=await c.qa.scorecards(),
            card=await c.qa.scorecard(int(card_id)) if card_id else None,
            rows=rows,
            errors=errors,
            name=data.get("name", ""),
        )
    raise flash_redirect(
        f"/qa/scorecards/{card.id}",
        _("Scorecard saved (version {n}).", n=card.version),
    )


# -- the weekly draw --------------------------------------------------------------------


@require("supervisor", "admin")
async def draws(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    found = await c.qa.draws()
    checked = {d.id: await c.qa.verify_draw(d.id) for d, _n in found[:20]}
    today = c.clock.now().astimezone(c.settings.tz).date()
    return render(
        request,
        "qa_draws.html",
        draws=found,
        checked=checked,
        last_week=(week_of(today) - timedelta(days=7)).isoformat(),
        reasons=_reason_words(request),
        per_agent=c.settings.qa.calls_per_agent,
    )


@require("supervisor", "admin")
async def run_draw(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    _ = request[GETTEXT]
    data = await form(request)
    try:
        week = parse_day(data.get("week", ""))
    except ValueError:
        raise PageError(400, fields={"week": _("must be a date such as 25/11/2026")}) from None
    try:
        d = await c.qa.run_draw(request[ACTOR], week)
    except QaConflict as e:
        raise flash_redirect("/qa/draws", _problem(request, e)) from None
    raise flash_redirect("/qa/draws", _("Week of {day} drawn.", day=d.week.strftime("%d/%m/%Y")))


# -- calibration and the report ---------------------------------------------------------


@require("supervisor", "admin")
async def calibration(request: web.Request) -> web.StreamResponse:
    c = ctx(request)
    calls = await c.qa.calibration()
    return render(
        request,
        "qa_calibration.html",
        calls=calls,
        summary=c.qa.agreement_by_criterion(calls),
        agent_names={a.extension: a.name for a in c.settings.agents},
    )


def _period(request: web.Request) -> tuple[date, date]:
    c = ctx(request)
    _ = request[GETTEXT]
    today = c.clock.now().astimezone(c.settings.tz).date()
    days = []
    for name, default in (("from", week_of(today) - timedelta(weeks=7)), ("to", today)):
        raw = request.query.get(name, "").strip()
        try:
            days.append(parse_day(raw) if raw else default)
        except ValueError:
            raise PageError(400, fields={name: _("must be a date such as 25/11/2026")}) from None
    return days[0], days[1]


def _by(request: web.Request) -> str:
    by = request.query.get("by", "agent")
    if by not in GROUPS:
        _ = request[GETTEXT]
        raise PageError(400, fields={"by": _("is not one of the allowed values")})
    return by


def _names(request: web.Request, by: str) -> dict[str, str]:
    s = ctx(request).settings
    if by == "agent":
        return {a.extension: a.name for a in s.agents}
    if by == "team":
        return {t.id: t.name for t in s.teams}
    if by == "shift":
        return {sh.id: sh.name for sh in s.shifts}
    return {}


async def quality_rows(request: web.Request, start: date, end: date, by: str) -> list[Any]:
    """The quality report's rows for local days ``start`` to ``end`` (both included)."""
    from core.clock import local_midnight

    c = ctx(request)
    tz = c.settings.tz
    return await c.qa.quality(
        local_midnight(start, tz), local_midnight(end + timedelta(days=1), tz), by
    )


@require("supervisor", "admin")
async def report(request: web.Request) -> web.StreamResponse:
    start, end = _period(request)
    by = _by(request)
    return render(
        request,
        "qa_report.html",
        rows=await quality_rows(request, start, end, by),
        by=by,
        groups=GROUPS,
        start=start,
        end=end,
        names=_names(request, by),
    )


def quality_csv(request: web.Request, rows: list[Any], by: str) -> str:
    _ = request[GETTEXT]
    names = _names(request, by)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(
        [_("Week"), {"agent": _("Agent"), "team": _("Team"), "shift": _("Shift"),
                     "criterion": _("Criterion")}[by], _("Grades"), _("Average score"),
         _("Fatal fails")]
    )  # fmt: skip
    for r in rows:
        key = names.get(r.key, r.key)
        # a cell a spreadsheet would run as a formula is written as text
        if key[:1] in ("=", "+", "-", "@"):
            key = "'" + key
        w.writerow([r.period.isoformat(), key, r.grades, r.average, r.fatal])
    return out.getvalue()


@require("supervisor", "admin")
async def report_csv(request: web.Request) -> web.StreamResponse:
    start, end = _period(request)
    by = _by(request)
    text = quality_csv(request, await quality_rows(request, start, end, by), by)
    return web.Response(
        body=("\ufeff" + text).encode(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="quality-{by}-{start}-{end}.csv"'},
    )


def routes() -> list[web.RouteDef]:
    call = r"/recordings/{call_id:\d{1,12}}"
    grade_path = r"/qa/grades/{grade_id:\d{1,12}}"
    return [
        web.get("/qa", work_list),
        web.get("/qa/mine", my_grades),
        web.get("/qa/scorecards", scorecards),
        web.post("/qa/scorecards", save_scorecard),
        web.get(r"/qa/scorecards/{card_id:\d{1,9}}", scorecard_page),
        web.post(r"/qa/scorecards/{card_id:\d{1,9}}", save_scorecard),
        web.get("/qa/draws", draws),
        web.post("/qa/draws", run_draw),
        web.get("/qa/disputes", disputes),
        web.get("/qa/calibration", calibration),
        web.get("/qa/report", report),
        web.get("/qa/report.csv", report_csv),
        web.post(f"{call}/qa/grade", grade),
        web.post(f"{call}/qa/comments", add_comment),
        web.post(f"{call}/qa/flag", flag),
        web.post(f"{grade_path}/dispute", dispute),
        web.post(f"{grade_path}/resolve", resolve),
    ]
