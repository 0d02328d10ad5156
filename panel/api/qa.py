"""The JSON API of quality grading: its bodies, answers and handlers.

Declared in :mod:`panel.api.operations` with the rest of the API (one list makes the
routes and the OpenAPI document).  The rules are :mod:`qa.service`'s; the bodies here
are shaped so that anything the document allows is either done or refused for what
is stored (404, 409), never as invalid: criterion ids are made from the labels, a
missing weight is 1, a dispute is resolved by giving a new score or none.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, Field, WithJsonSchema

from accounts.identity import Actor
from panel.api.schemas import UTCTime, _Body
from panel.api.views import _json, read_json
from panel.keys import ACTOR
from panel.security import require
from panel.views.common import ctx
from qa.scoring import MAX_MARK
from qa.service import CardView, GradeView
from tickets.schemas import text_schema, validate

TEXT = 2000
Said = Annotated[str, WithJsonSchema(text_schema(TEXT, required=True))]
Remark = Annotated[str | None, WithJsonSchema(text_schema(TEXT, required=False))]


# -- bodies -----------------------------------------------------------------------------


class CriterionIn(_Body):
    label: Annotated[str, WithJsonSchema(text_schema(200, required=True))]
    weight: Annotated[int, Field(ge=1, le=100, description="Ignored for a fatal one.")] = 1
    fatal: bool = Field(
        default=False, description="Passed or failed; failed makes the whole score 0."
    )


class ScorecardIn(_Body):
    name: Annotated[str, WithJsonSchema(text_schema(200, required=True))]
    criteria: Annotated[list[CriterionIn], Field(min_length=1, max_length=30)]


class GradeIn(_Body):
    version_id: Annotated[int, Field(ge=1, le=2**31 - 1, description="The scorecard version.")]
    marks: dict[
        Annotated[str, Field(max_length=32)],
        Annotated[int | None, Field(ge=0, le=MAX_MARK)],
    ] = Field(
        description=f"A mark per criterion id: 0 to {MAX_MARK}, null for not applicable; "
        "a fatal criterion takes 1 (passed) or 0 (failed)."
    )
    summary: Remark = None


class QaCommentIn(_Body):
    at: Annotated[float, Field(ge=0, le=6 * 3600, description="Seconds into the recording.")]
    text: Said


class DisputeIn(_Body):
    reason: Said


class ResolveIn(_Body):
    note: Said
    score: Annotated[
        float | None,
        Field(ge=0, le=100, description="A new score; leave it out to let the grade stand."),
    ] = None


class DrawIn(_Body):
    week: Annotated[
        str,
        Field(
            pattern=r"^20\d\d-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])$",
            description="Any day of the week to draw (YYYY-MM-DD); the week runs Monday "
            "to Sunday, local time.",
        ),
    ]


# -- answers ----------------------------------------------------------------------------


class CriterionOut(BaseModel):
    id: str
    label: str
    weight: int
    fatal: bool


class ScorecardOut(BaseModel):
    id: int
    name: str
    active: bool
    version_id: int
    version: int
    versions: int
    criteria: list[CriterionOut]


class ScorecardList(BaseModel):
    items: list[ScorecardOut]


class GradeOut(BaseModel):
    grade_id: int
    call_id: int
    version_id: int
    grader: str
    agent_extension: str | None
    score: float
    fatal: bool
    marks: dict[str, int | None]
    summary: str | None
    graded_at: UTCTime
    dispute_state: str | None = Field(description="null, open, upheld or changed.")
    dispute_reason: str | None
    resolution: str | None
    original_score: float | None


class GradeList(BaseModel):
    items: list[GradeOut]


class QaCommentOut(BaseModel):
    comment_id: int
    call_id: int
    at: float
    text: str
    author: str
    created_at: UTCTime


class WorkItemOut(BaseModel):
    call_id: int
    reason: str = Field(description="random, flagged, reopened or low_rating.")
    agent_extension: str | None
    shift_id: str | None
    started_at: UTCTime
    grades: int


class WorkList(BaseModel):
    items: list[WorkItemOut]


class DrawOut(BaseModel):
    id: int
    week: date
    seed: str
    picked: int
    created_at: UTCTime


def card_out(card: CardView) -> ScorecardOut:
    return ScorecardOut(
        id=card.id,
        name=card.name,
        active=card.active,
        version_id=card.version_id,
        version=card.version,
        versions=card.versions,
        criteria=[CriterionOut(**c.as_dict()) for c in card.criteria],
    )


def grade_out(g: Any) -> GradeOut:
    import json

    return GradeOut(
        grade_id=g.id,
        call_id=g.call_id,
        version_id=g.version_id,
        grader=g.grader_name,
        agent_extension=g.agent_extension,
        score=g.score,
        fatal=g.fatal,
        marks=json.loads(g.marks) if isinstance(g.marks, str) else g.marks,
        summary=g.summary,
        graded_at=g.graded_at,
        dispute_state=g.dispute_state,
        dispute_reason=g.dispute_reason,
        resolution=g.resolution,
        original_score=g.original_score,
    )


# -- handlers ---------------------------------------------------------------------------


@require("supervisor", "admin")
async def list_scorecards(request: web.Request) -> web.StreamResponse:
    cards = await ctx(request).qa.scorecards()
    return _json(ScorecardList(items=[card_out(c) for c in cards]))


@require("admin")
async def create_scorecard(request: web.Request) -> web.StreamResponse:
    body = validate(ScorecardIn, await read_json(request))
    card = await ctx(request).qa.create_scorecard(
        request[ACTOR], body.name, [c.model_dump() for c in body.criteria]
    )
    return _json(card_out(card), status=201)


@require("supervisor", "admin")
async def qa_work_list(request: web.Request) -> web.StreamResponse:
    items = await ctx(request).qa.work_list(request[ACTOR], done=request.query.get("done") == "1")
    return _json(
        WorkList(
            items=[
                WorkItemOut(
                    call_id=it.call.id,
                    reason=it.sample.reason,
                    agent_extension=it.call.agent_extension,
                    shift_id=it.call.shift_id,
                    started_at=it.call.started_at,
                    grades=it.grades,
                )
                for it in items
            ]
        )
    )


@require("supervisor", "admin")
async def grade_call(request: web.Request) -> web.StreamResponse:
    body = validate(GradeIn, await read_json(request))
    g = await ctx(request).qa.grade(
        request[ACTOR], int(request.match_info["id"]), body.version_id, body.marks, body.summary
    )
    return _json(grade_out(g))


@require("supervisor", "admin", "agent")
async def call_grades(request: web.Request) -> web.StreamResponse:
    """A call's grades: every one for graders and supervisors, an agent's own calls' only."""
    c = ctx(request)
    actor: Actor = request[ACTOR]
    views: list[GradeView] = await c.qa.grades_for_call(int(request.match_info["id"]))
    return _json(
        GradeList(items=[grade_out(v.grade) for v in views if c.qa.may_see_grade(actor, v.grade)])
    )


@require("supervisor", "admin")
async def comment_call(request: web.Request) -> web.StreamResponse:
    body = validate(QaCommentIn, await read_json(request))
    n = await ctx(request).qa.comment(
        request[ACTOR], int(request.match_info["id"]), body.at, body.text
    )
    return _json(
        QaCommentOut(
            comment_id=n.id,
            call_id=n.call_id,
            at=n.at_seconds,
            text=n.text,
            author=n.author_name,
            created_at=n.created_at,
        ),
        status=201,
    )


@require("agent")
async def dispute_grade(request: web.Request) -> web.StreamResponse:
    body = validate(DisputeIn, await read_json(request))
    g = await ctx(request).qa.dispute(request[ACTOR], int(request.match_info["id"]), body.reason)
    return _json(grade_out(g))


@require("supervisor", "admin")
async def resolve_grade(request: web.Request) -> web.StreamResponse:
    body = validate(ResolveIn, await read_json(request))
    g = await ctx(request).qa.resolve(
        request[ACTOR], int(request.match_info["id"]), body.note, body.score
    )
    return _json(grade_out(g))


@require("supervisor", "admin")
async def draw_week(request: web.Request) -> web.StreamResponse:
    import json

    body = validate(DrawIn, await read_json(request))
    d = await ctx(request).qa.run_draw(request[ACTOR], date.fromisoformat(body.week))
    created: datetime = d.created_at
    return _json(
        DrawOut(
            id=d.id, week=d.week, seed=d.seed, picked=len(json.loads(d.picked)), created_at=created
        ),
        status=201,
    )
