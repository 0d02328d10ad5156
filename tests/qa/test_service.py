"""Quality grading stored in real SQLite and PostgreSQL: scorecard versions, the weekly
draw (stratified, reopened and low-rated calls, flagged ones, reproducible, no call
twice), grades, calibration, disputes and the quality report."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from accounts.identity import Actor
from accounts.models import Role
from callcenter.models import Call, Direction, Outcome
from core.clock import FakeClock
from core.db import Database
from qa.exceptions import QaConflict, QaNotFound
from qa.models import Draw, Reason, Sample
from qa.service import QaService
from tests.panel.conftest import panel_settings
from tests.schema import migrated
from tickets.exceptions import InvalidInput
from tickets.models import Rating, Ticket, TicketEvent

ADMIN = Actor(id=1, name="Quản trị", role=Role.ADMIN)
SUP = Actor(id=2, name="Giám sát", role=Role.SUPERVISOR)
SUP2 = Actor(id=3, name="Giám sát 2", role=Role.SUPERVISOR)
AGENT = Actor(id=4, name="Lan", role=Role.AGENT, extension="1001")
OTHER_AGENT = Actor(id=5, name="Hùng", role=Role.AGENT, extension="1002")
# the week of Monday 7 December 2026, local time (UTC+7)
MONDAY = date(2026, 12, 7)
WEEK_START = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)  # Monday 00:00 local


@dataclass
class Env:
    qa: QaService
    db: Database
    clock: FakeClock


@pytest.fixture
async def env(database_url: str, tmp_path: Path) -> AsyncIterator[Env]:
    settings = panel_settings(tmp_path, database_url, f"qa{uuid.uuid4().hex[:6]}")
    migrated(settings.database)
    db = Database(settings.database)
    clock = FakeClock(WEEK_START + timedelta(days=8))  # the next Tuesday
    try:
        yield Env(QaService(db, settings, clock), db, clock)
    finally:
        await db.close()


async def add_call(
    db: Database,
    *,
    at: datetime,
    agent: str | None = "1001",
    shift: str = "morning",
    talk: int = 90,
    outcome: str = Outcome.ANSWERED,
    recorded: bool = True,
    direction: str = Direction.INBOUND,
) -> int:
    uid = f"pbx-{uuid.uuid4().hex[:10]}.1"
    call = Call(
        uniqueid=uid,
        linkedid=uid,
        hotline_number="1022",
        caller_number="0903123456",
        team_id="t1022",
        shift_id=shift,
        agent_extension=agent,
        started_at=at,
        answered_at=at,
        ended_at=at + timedelta(seconds=talk),
        talk_seconds=talk,
        outcome=outcome,
        direction=direction,
        recording_base=f"/var/rec/{uid}" if recorded else None,
    )
    async with db.session() as s:
        s.add(call)
    return call.id


async def reopened_ticket_of(db: Database, call_id: int, at: datetime) -> None:
    """A ticket the call made, reopened at ``at`` (as tickets.service leaves it)."""
    n = uuid.uuid4().int % 10**10
    async with db.session() as s:
        t = Ticket(
            code=f"T{n % 10**9}",
            number=f"{n:010d}",
            call_id=call_id,
            channel="phone",
            domain="state",
            topic="traffic",
            level=2,
            description="Đèn hỏng",
            status="reopened",
            reopens=1,
            created_at=at - timedelta(days=1),
            updated_at=at,
        )
        s.add(t)
        await s.flush()
        s.add(
            TicketEvent(
                ticket_id=t.id, at=at, actor_name="citizen", action="reopened", details="{}"
            )
        )


async def rated(db: Database, call_id: int, value: int, at: datetime) -> None:
    async with db.session() as s:
        s.add(Rating(call_id=call_id, rating=value, source="after_call", at=at))


CRITERIA = [
    {"label": "Chào hỏi", "weight": 1},
    {"label": "Lắng nghe", "weight": 3},
    {"label": "Thông tin đúng", "fatal": True},
]


async def test_scorecard_versions_and_grades_keep_theirs(env: Env) -> None:
    card = await env.qa.create_scorecard(ADMIN, "Phiếu chuẩn", CRITERIA)
    assert (card.version, [c.id for c in card.criteria]) == (
        1,
        ["chao_hoi", "lang_nghe", "thong_tin_dung"],
    )
    with pytest.raises(PermissionError):
        await env.qa.create_scorecard(SUP, "x", CRITERIA)
    with pytest.raises(InvalidInput) as e:
        await env.qa.create_scorecard(ADMIN, " ", [{"label": "a", "weight": 0}])
    assert e.value.fields() == ["name", "criteria[0].weight"]  # both named at once

    call = await add_call(env.db, at=WEEK_START + timedelta(hours=3))
    g = await env.qa.grade(
        SUP,
        call,
        card.version_id,
        {"chao_hoi": 4, "lang_nghe": 2, "thong_tin_dung": 1},
        "Cần hỏi rõ địa chỉ",
    )
    assert (g.score, g.fatal) == (62.5, False)

    # editing the criteria makes version 2; the grade keeps version 1 and its criteria
    edited = await env.qa.edit_scorecard(
        ADMIN, card.id, criteria=[*CRITERIA, {"label": "Kết thúc lịch sự", "weight": 2}]
    )
    assert (edited.version, edited.versions) == (2, 2)
    same = await env.qa.edit_scorecard(ADMIN, card.id, name="Phiếu chuẩn 2026", criteria=None)
    assert (same.version, same.name) == (2, "Phiếu chuẩn 2026")  # a rename is no version
    (view,) = await env.qa.grades_for_call(call)
    assert view.version == 1 and len(view.criteria) == 3
    assert view.marks == {"chao_hoi": 4, "lang_nghe": 2, "thong_tin_dung": 1}

    # grading again replaces the grader's marks; a failed fatal criterion makes it 0
    g = await env.qa.grade(
        SUP, call, edited.version_id, {"chao_hoi": 4, "lang_nghe": 4, "thong_tin_dung": 0}
    )
    assert (g.score, g.fatal) == (0.0, True)
    (view,) = await env.qa.grades_for_call(call)
    assert view.version == 2 and view.grade.score == 0.0
    # a call that was graded is in the work list (graded), once
    sample = await env.qa.sample_of(call)
    assert sample is not None and sample.reason == Reason.FLAGGED

    with pytest.raises(QaNotFound):
        await env.qa.grade(SUP, call, 999_999, {})
    with pytest.raises(InvalidInput) as e:
        await env.qa.grade(SUP, call, edited.version_id, {"chao_hoi": 9})
    assert "marks.chao_hoi" in e.value.fields()
    with pytest.raises(PermissionError):
        await env.qa.grade(AGENT, call, edited.version_id, {"chao_hoi": 1})
    unanswered = await add_call(env.db, at=WEEK_START, outcome=Outcome.ABANDONED, agent=None)
    with pytest.raises(QaConflict):
        await env.qa.grade(SUP, unanswered, edited.version_id, {"chao_hoi": 1})


async def test_weekly_draw(env: Env) -> None:
    assert env.qa.settings.qa.calls_per_agent == 3  # the example configuration's
    day = timedelta(days=1)
    t = WEEK_START + timedelta(hours=2)
    a_morning = [await add_call(env.db, at=t + i * day) for i in range(6)]
    a_afternoon = [
        await add_call(env.db, at=t + timedelta(hours=9) + i * day, shift="afternoon")
        for i in range(2)
    ]
    b_night = [
        await add_call(env.db, at=t + timedelta(hours=20) + i * day, agent="1002", shift="night")
        for i in range(3)
    ]
    # never drawn: too short, not answered, not recorded, outbound, another week
    short = await add_call(env.db, at=t, talk=5)
    abandoned = await add_call(env.db, at=t, outcome=Outcome.ABANDONED)
    unrecorded = await add_call(env.db, at=t, recorded=False)
    outbound = await add_call(env.db, at=t, direction=Direction.OUTBOUND)
    last_week = await add_call(env.db, at=t - 7 * day)
    # reopened and low-rated calls of 1002 join the list whatever their length
    reopened = await add_call(env.db, at=t, agent="1002", shift="night", talk=5)
    await reopened_ticket_of(env.db, reopened, t + 2 * day)
    low = await add_call(env.db, at=t + day, agent="1002", shift="night")
    await rated(env.db, low, 1, t + day)
    fine = await add_call(env.db, at=t + day, agent="1002", shift="night", talk=3)
    await rated(env.db, fine, 5, t + day)
    # a supervisor flagged one of 1001's calls before the draw
    flagged = a_morning[0]
    await env.qa.flag(SUP, flagged, "Khách phàn nàn")
    with pytest.raises(QaConflict):
        await env.qa.flag(SUP, flagged)  # a call is listed once

    with pytest.raises(PermissionError):
        await env.qa.run_draw(AGENT, MONDAY)
    d = await env.qa.run_draw(SUP, MONDAY + timedelta(days=3))  # any day of the week
    assert d.week == MONDAY
    async with env.db.session() as s:
        samples = list((await s.execute(select(Sample))).scalars())
    by_call = {x.call_id: x for x in samples}
    assert len(by_call) == len(samples)
    assert by_call[flagged].reason == Reason.FLAGGED and by_call[flagged].draw_id is None
    assert by_call[reopened].reason == Reason.REOPENED
    assert by_call[low].reason == Reason.LOW_RATING
    assert fine not in by_call
    for never in (short, abandoned, unrecorded, outbound, last_week):
        assert never not in by_call
    random_picks = [x for x in samples if x.reason == Reason.RANDOM]
    # 1001: 3 picks over 5 morning calls left (one is flagged) and 2 afternoon ones:
    # 3 * 5/7 = 2.14 and 3 * 2/7 = 0.86: two in the morning, one in the afternoon
    assert Counter((x.agent_extension, x.shift_id) for x in random_picks) == {
        ("1001", "morning"): 2,
        ("1001", "afternoon"): 1,
        ("1002", "night"): 3,
    }
    picked = {x.call_id for x in random_picks}
    assert picked <= set(a_morning[1:] + a_afternoon + b_night)
    assert set(json.loads(d.picked)) == picked

    # stored whole: run again from its pool and seed, it gives the same picks
    assert await env.qa.verify_draw(d.id)
    # a week is drawn once
    with pytest.raises(QaConflict):
        await env.qa.run_draw(SUP, MONDAY)
    # the work list holds them all, newest first, none graded
    work = await env.qa.work_list(SUP)
    assert {w.call.id for w in work} == set(by_call)

    # tampering with the stored picks shows
    async with env.db.session() as s:
        await s.execute(
            update(Draw).where(Draw.id == d.id).values(picked=json.dumps(sorted(picked)[:-1]))
        )
    assert not await env.qa.verify_draw(d.id)
    listed = await env.qa.draws()
    assert listed[0][1][Reason.RANDOM] == 6


async def test_two_graders_calibration_and_report(env: Env) -> None:
    card = await env.qa.create_scorecard(ADMIN, "Phiếu", CRITERIA)
    v = card.version_id
    c1 = await add_call(env.db, at=WEEK_START + timedelta(hours=3))
    c2 = await add_call(
        env.db, at=WEEK_START + timedelta(hours=15), agent="1002", shift="afternoon"
    )
    await env.qa.grade(SUP, c1, v, {"chao_hoi": 4, "lang_nghe": 2, "thong_tin_dung": 1})
    await env.qa.grade(SUP2, c1, v, {"chao_hoi": 4, "lang_nghe": 0, "thong_tin_dung": 1})
    await env.qa.grade(SUP, c2, v, {"chao_hoi": 2, "lang_nghe": 2, "thong_tin_dung": 0})

    (cal,) = await env.qa.calibration()
    assert cal.call.id == c1 and cal.graders == ["Giám sát", "Giám sát 2"]
    rows = {c.id: (marks, agreed) for c, marks, agreed in cal.rows}
    assert rows["chao_hoi"] == ([4, 4], 1.0)
    assert rows["lang_nghe"] == ([2, 0], 0.0)
    summary = dict((label, share) for label, share, _n in env.qa.agreement_by_criterion([cal]))
    assert summary == {"Chào hỏi": 1.0, "Lắng nghe": 0.0, "Thông tin đúng": 1.0}

    end = WEEK_START + timedelta(days=7)
    by_agent = {r.key: r for r in await env.qa.quality(WEEK_START, end, "agent")}
    # 62.5 and 25: (1*4/4 + 3*2/4) / 4 and (1*4/4 + 3*0/4) / 4
    assert by_agent["1001"].grades == 2
    assert by_agent["1001"].average == pytest.approx(43.75, abs=0.06)
    assert by_agent["1002"].average == 0.0 and by_agent["1002"].fatal == 1
    assert {r.period for r in by_agent.values()} == {MONDAY}
    by_shift = {r.key: r.average for r in await env.qa.quality(WEEK_START, end, "shift")}
    assert by_shift == {"morning": pytest.approx(43.75, abs=0.06), "afternoon": 0.0}
    (team,) = await env.qa.quality(WEEK_START, end, "team")
    assert (team.key, team.grades, team.fatal) == ("t1022", 3, 1)
    by_criterion = {r.key: r for r in await env.qa.quality(WEEK_START, end, "criterion")}
    assert by_criterion["Chào hỏi"].average == pytest.approx(83.3, abs=0.1)  # 4,4,2 of 4
    assert by_criterion["Thông tin đúng"].fatal == 1
    assert await env.qa.quality(end, end + timedelta(days=7), "agent") == []
    with pytest.raises(InvalidInput):
        await env.qa.quality(WEEK_START, end, "hotline")


async def test_dispute_once_then_a_supervisor_resolves(env: Env) -> None:
    card = await env.qa.create_scorecard(ADMIN, "Phiếu", CRITERIA)
    call = await add_call(env.db, at=WEEK_START + timedelta(hours=3))
    g = await env.qa.grade(
        SUP, call, card.version_id, {"chao_hoi": 1, "lang_nghe": 1, "thong_tin_dung": 1}
    )
    assert g.score == 25.0
    assert env.qa.may_see_grade(AGENT, g) and not env.qa.may_see_grade(OTHER_AGENT, g)
    assert [x[0].id for x in await env.qa.agent_grades("1001")] == [g.id]
    assert await env.qa.is_graded_for(call, "1001")
    assert not await env.qa.is_graded_for(call, "1002")

    with pytest.raises(QaNotFound):
        await env.qa.dispute(OTHER_AGENT, g.id, "không phải của tôi")
    with pytest.raises(PermissionError):
        await env.qa.dispute(SUP, g.id, "x")
    with pytest.raises(InvalidInput) as e:
        await env.qa.dispute(AGENT, g.id, "   ")
    assert e.value.fields() == ["reason"]
    d = await env.qa.dispute(AGENT, g.id, "Tôi đã hỏi rõ địa chỉ ở phút 0:40")
    assert d.dispute_state == "open"
    with pytest.raises(QaConflict) as c:
        await env.qa.dispute(AGENT, g.id, "lần nữa")
    assert c.value.reason == "disputed"
    # the grader cannot quietly change a disputed grade
    with pytest.raises(QaConflict):
        await env.qa.grade(
            SUP, call, card.version_id, {"chao_hoi": 4, "lang_nghe": 4, "thong_tin_dung": 1}
        )
    assert [x[0].id for x in await env.qa.disputes()] == [g.id]

    with pytest.raises(PermissionError):
        await env.qa.resolve(AGENT, g.id, "ok")
    with pytest.raises(InvalidInput) as e:
        await env.qa.resolve(SUP, g.id, "ok", "120")
    assert e.value.fields() == ["score"]
    r = await env.qa.resolve(SUP2, g.id, "Đúng, đã hỏi rõ: sửa điểm", "75")
    assert (r.dispute_state, r.score, r.original_score) == ("changed", 75.0, 25.0)
    with pytest.raises(QaConflict):
        await env.qa.resolve(SUP, g.id, "again")
    assert await env.qa.disputes() == []
    (view,) = await env.qa.grades_for_call(call)
    assert view.grade.resolved_by == "Giám sát 2" and view.grade.score == 75.0

    # a grade older than [qa] dispute_days cannot be disputed any more
    other = await add_call(env.db, at=WEEK_START + timedelta(hours=4))
    g2 = await env.qa.grade(
        SUP, other, card.version_id, {"chao_hoi": 1, "lang_nghe": 1, "thong_tin_dung": 1}
    )
    env.clock.advance(timedelta(days=env.qa.settings.qa.dispute_days, minutes=1))
    with pytest.raises(QaConflict) as c:
        await env.qa.dispute(AGENT, g2.id, "muộn")
    assert c.value.reason == "too_late"
    upheld_call = await add_call(env.db, at=WEEK_START + timedelta(hours=5))
    g3 = await env.qa.grade(
        SUP, upheld_call, card.version_id, {"chao_hoi": 1, "lang_nghe": 1, "thong_tin_dung": 1}
    )
    await env.qa.dispute(AGENT, g3.id, "xin xem lại")
    kept = await env.qa.resolve(SUP, g3.id, "Giữ nguyên")
    assert (kept.dispute_state, kept.score, kept.original_score) == ("upheld", 25.0, None)


async def test_comments_at_a_moment(env: Env) -> None:
    call = await add_call(env.db, at=WEEK_START + timedelta(hours=3))
    await env.qa.comment(SUP, call, "12.5", "Chưa xác nhận địa chỉ")
    await env.qa.comment(SUP2, call, 3, "Chào hỏi tốt")
    found = await env.qa.comments(call)
    assert [(c.at_seconds, c.author_name) for c in found] == [
        (3.0, "Giám sát 2"),
        (12.5, "Giám sát"),
    ]
    for bad in ("x", -1, 10**9, float("nan"), True):
        with pytest.raises(InvalidInput) as e:
            await env.qa.comment(SUP, call, bad, "a")
        assert e.value.fields() == ["at"]
    with pytest.raises(InvalidInput) as e:
        await env.qa.comment(SUP, call, 1, "nul\x00")
    assert e.value.fields() == ["text"]
    with pytest.raises(QaNotFound):
        await env.qa.comment(SUP, 999_999, 1, "a")
    with pytest.raises(PermissionError):
        await env.qa.comment(AGENT, call, 1, "a")
