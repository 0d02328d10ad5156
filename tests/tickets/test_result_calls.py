"""Result calls: the schedule (pure), the calls made with the agency's answer and their
tries, on real SQLite and PostgreSQL, and the dialler's rounds against a recording AMI
stand-in (the calls through the real Asterisk are in test_result_calls_lab.py)."""

# ruff: noqa: F811

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from callcenter.models import Call, Outcome, Result
from callcenter.originate import Originated
from core.settings import ResultCalls, Settings
from tests.tickets.test_tickets_service import T0, World, make, w  # noqa: F401
from tickets.models import ResultCall, ResultCallState, Status
from tickets.result_calls import (
    ResultCallService,
    after_try,
    diallable,
    in_hours,
    next_allowed,
)
from tickets.result_dialler import DIAL_CONTEXT, ResultCallDialler
from tickets.service import TicketService, event_details

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
DAY = (time(8), time(20))
NIGHT = (time(22), time(6))


# -- the schedule ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("window", "at", "inside"),
    [
        (DAY, time(8), True),
        (DAY, time(7, 59), False),
        (DAY, time(19, 59), True),
        (DAY, time(20), False),
        (DAY, time(0), False),
        (NIGHT, time(23), True),
        (NIGHT, time(5, 59), True),
        (NIGHT, time(6), False),
        (NIGHT, time(12), False),
    ],
)
def test_in_hours(window, at, inside):
    assert in_hours(window, at) is inside


def test_next_allowed_waits_for_the_morning_in_local_time():
    evening = datetime(2026, 12, 7, 13, 30, tzinfo=UTC)  # 20:30 in Ho Chi Minh City
    assert next_allowed(evening, DAY, HCM) == datetime(2026, 12, 8, 1, 0, tzinfo=UTC)
    early = datetime(2026, 12, 7, 0, 15, tzinfo=UTC)  # 07:15 local: today at 08:00
    assert next_allowed(early, DAY, HCM) == datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    noon = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
    assert next_allowed(noon, DAY, HCM) == noon


def test_after_try_retries_then_gives_up():
    policy = ResultCalls(max_attempts=3, retry_minutes=30)
    now = T0
    step = after_try(Result.NO_ANSWER, 1, policy, now)
    assert (step.state, step.next_at) == (ResultCallState.PENDING, now + timedelta(minutes=30))
    step = after_try(Result.BUSY, 2, policy, now)
    assert step.state == ResultCallState.PENDING and step.result == Result.BUSY
    step = after_try(Result.FAILED, 3, policy, now)
    assert (step.state, step.next_at, step.result) == (
        ResultCallState.DONE,
        None,
        Result.UNREACHABLE,
    )
    step = after_try(Result.CONNECTED, 3, policy, now)
    assert step.state == ResultCallState.TALKING


def test_hours_setting_is_checked():
    with pytest.raises(ValueError, match="HH:MM|pattern"):
        ResultCalls(hours="8-20")
    with pytest.raises(ValueError, match="differ"):
        ResultCalls(hours="08:00-08:00")
    assert ResultCalls(hours="22:00-06:00").window() == NIGHT


@pytest.mark.parametrize(
    ("phone", "number"),
    [("0901 234 567", "0901234567"), ("+84901234567", "+84901234567"), ("abc", None), ("", None)],
)
def test_diallable(phone, number):
    assert diallable(phone) == number


# -- the calls made with the answer ----------------------------------------------------
def enabled(settings: Settings, **policy: Any) -> Settings:
    rc = settings.result_calls.model_copy(update={"enabled": True, **policy})
    trunk = settings.trunk.model_copy(update={"contact": "sip:127.0.0.2:5060"})
    return settings.model_copy(update={"result_calls": rc, "trunk": trunk})


@dataclass
class Calls:
    w: World
    svc: TicketService
    calls: ResultCallService
    woken: list[int] = field(default_factory=list)


@pytest.fixture
def rc(w: World) -> Calls:  # noqa: F811
    settings = enabled(w.svc.settings, retry_minutes=10, max_attempts=2)
    svc = TicketService(w.db, settings, w.clock)
    out = Calls(w, svc, ResultCallService(w.db, settings, w.clock))

    async def wake(ticket) -> None:
        out.woken.append(ticket.id)

    svc.on_result_recorded.append(wake)
    return out


async def jobs(rc: Calls, ticket_id: int) -> list[ResultCall]:
    return await rc.calls.for_ticket(ticket_id)


async def test_an_answer_to_a_level_2_report_makes_one_call_and_wakes_the_dialler(rc: Calls):
    w = rc.w
    t = await make(w, 2, agency_id=w.ward, citizen_phone="0901 234 567")
    t = await rc.svc.answer(w.ward_officer, t.id, t.version, "Đã nạo vét cống")
    (job,) = await jobs(rc, t.id)
    assert (job.number, job.state, job.attempts, job.round) == ("0901234567", "pending", 0, 0)
    assert job.next_attempt_at == T0 and job.language == "vi"
    assert job.hotline_number == w.svc.settings.hotlines[0].number
    assert rc.woken == [t.id]
    assert [d.id for d in await rc.calls.due()] == [job.id]


async def test_level_3_too_but_not_without_a_phone_nor_when_off(rc: Calls):
    w = rc.w
    t3 = await make(w, 3, agency_id=w.ward)
    t3 = await rc.svc.approve(w.supervisor, t3.id, t3.version)
    t3 = await rc.svc.answer(w.ward_officer, t3.id, t3.version, "Đã xử lý")
    assert len(await jobs(rc, t3.id)) == 1
    nophone = await make(w, 2, agency_id=w.ward, citizen_phone=None)
    nophone = await rc.svc.answer(w.ward_officer, nophone.id, nophone.version, "Xong")
    assert await jobs(rc, nophone.id) == []
    off = await make(w, 2, agency_id=w.ward)
    off = await w.svc.answer(w.ward_officer, off.id, off.version, "Xong")  # result calls off
    assert await jobs(rc, off.id) == []
    assert rc.woken == [t3.id]


async def test_one_call_per_result_and_a_new_one_after_a_reopening(rc: Calls):
    w = rc.w
    t = await make(w, 2, agency_id=w.ward)
    t = await rc.svc.answer(w.ward_officer, t.id, t.version, "Lần một")
    t = await rc.svc.reopen(w.supervisor, t.id, t.version, "Công dân chưa hài lòng")
    t = await rc.svc.forward(w.supervisor, t.id, t.version, w.dept)
    t = await rc.svc.answer(w.dept_officer, t.id, t.version, "Lần hai")
    first, second = await jobs(rc, t.id)
    assert (first.round, second.round) == (0, 1)
    # the same round twice (a replayed transaction) makes no second call
    from tickets.result_calls import add_call

    async with w.db.session() as s:
        ticket = await s.get(type(t), t.id)
        assert await add_call(s, rc.svc.settings, ticket, w.clock.now()) is None
    assert len(await jobs(rc, t.id)) == 2


async def answered_ticket(rc: Calls, phone: str = "0901234567"):
    w = rc.w
    t = await make(w, 2, agency_id=w.ward, citizen_phone=phone)
    return await rc.svc.answer(w.ward_officer, t.id, t.version, "Đã xử lý")


async def test_no_answer_is_tried_again_then_the_citizen_is_unreachable(rc: Calls):
    w = rc.w
    t = await answered_ticket(rc)
    (due,) = await rc.calls.due()
    claimed = await rc.calls.claim(due.id, "rc-1-a")
    assert claimed is not None and claimed.attempt == 1
    assert await rc.calls.claim(due.id, "rc-1-b") is None, "claimed once"
    async with w.db.session() as s:
        call = await s.scalar(select(Call).where(Call.uniqueid == "rc-1-a"))
    assert call.outcome == Outcome.RESULT_CALL and call.caller_number == "0901234567"
    await rc.calls.not_answered("rc-1-a", Result.NO_ANSWER, "reason:3")
    (job,) = await jobs(rc, t.id)
    assert job.state == "pending" and job.next_attempt_at == T0 + timedelta(minutes=10)
    assert await rc.calls.due() == []
    w.clock.advance(timedelta(minutes=10))
    (due,) = await rc.calls.due()
    await rc.calls.claim(due.id, "rc-1-c")
    await rc.calls.not_answered("rc-1-c", Result.BUSY)
    (job,) = await jobs(rc, t.id)
    assert (job.state, job.attempts, job.last_result) == ("done", 2, "busy")
    tries = [event_details(e) for e in await w.q.history(t.id) if e.action == "result_call"]
    assert [(d["call_result"], d["attempt"], d["attempts"]) for d in tries] == [
        ("no_answer", 1, 2),
        ("busy", 2, 2),
    ]
    assert tries[-1]["unreachable"] is True


async def test_answered_then_ended_links_the_recorded_call(rc: Calls):
    w = rc.w
    t = await answered_ticket(rc)
    (due,) = await rc.calls.due()
    c = await rc.calls.claim(due.id, "rc-2-a")
    assert await rc.calls.answered("rc-2-a", c.recording_base)
    w.clock.advance(timedelta(seconds=40))
    recorded: list[int] = []

    async def hook(call_id: int) -> None:
        recorded.append(call_id)

    rc.calls.on_recorded_call_ended.append(hook)
    assert await rc.calls.ended("rc-2-a", "heard", "rated")
    assert not await rc.calls.ended("rc-2-a", "heard", "rated"), "once"
    (job,) = await jobs(rc, t.id)
    assert (job.state, job.last_result) == ("done", "connected") and job.call_id == recorded[0]
    async with w.db.session() as s:
        call = await s.get(Call, job.call_id)
    assert call.talk_seconds == 40 and call.recording_base == c.recording_base
    assert call.recording_caller.endswith("-in.wav")
    (line,) = [e for e in await w.q.history(t.id) if e.action == "result_call"]
    assert event_details(line) == {
        "attempt": 1,
        "attempts": 2,
        "call_id": job.call_id,
        "call_result": "answered",
    }
    assert (await w.q.get(t.id)).status == Status.ANSWERED, "the ticket is not moved"


async def test_a_short_call_s_end_overtaking_its_answer_is_not_undone(
    rc: Calls, monkeypatch: pytest.MonkeyPatch
):
    """The originate's answer and the dialplan's report of a short call's end come
    side by side.  The end, arriving while the answer is being written, must not be
    written over by it: the try ends done, not left talking."""
    await answered_ticket(rc)
    (due,) = await rc.calls.due()
    c = await rc.calls.claim(due.id, "rc-2-b")
    read = ResultCallService._by_uniqueid
    ending: list[asyncio.Task[bool]] = []

    async def end_meanwhile(s, uniqueid, **kw):  # type: ignore[no-untyped-def]
        job = await read(s, uniqueid, **kw)
        if not ending:  # the answer's read of the try, before it writes
            ending.append(asyncio.create_task(rc.calls.ended("rc-2-b", "heard", None)))
            await asyncio.sleep(0.3)  # time enough for the end to be written, if it can be
        return job

    monkeypatch.setattr(ResultCallService, "_by_uniqueid", staticmethod(end_meanwhile))
    assert await rc.calls.answered("rc-2-b", c.recording_base)
    assert await asyncio.wait_for(ending[0], 10)
    (job,) = await jobs(rc, due.ticket_id)
    assert (job.state, job.last_result) == ("done", "connected")


async def test_never_two_calls_at_once_to_one_number(rc: Calls):
    await answered_ticket(rc, "0907777777")
    await answered_ticket(rc, "0907777777")
    due = await rc.calls.due()
    assert len(due) == 2
    await rc.calls.claim(due[0].id, "rc-3-a")
    assert await rc.calls.due() == [], "the same citizen is being called"


async def test_a_restart_puts_ringing_tries_back(rc: Calls):
    t = await answered_ticket(rc)
    (due,) = await rc.calls.due()
    await rc.calls.claim(due.id, "rc-4-a")
    assert await rc.calls.recover() == 1
    (job,) = await jobs(rc, t.id)
    assert (job.state, job.attempts) == ("pending", 0)
    assert [d.id for d in await rc.calls.due()] == [job.id]


# -- the dialler's rounds ------------------------------------------------------------------
class RecordingAMI:
    """Stands in for Asterisk: keeps every Originate and answers as told."""

    connected = True

    def __init__(self, answer: bool = True, reason: str = "4") -> None:
        self.sent: list[dict[str, Any]] = []
        self.answer, self.reason = answer, reason

    async def action(self, action: dict[str, Any], **_: Any) -> Any:
        self.sent.append(action)
        return [
            {"Response": "Success"},
            {"Response": "Success" if self.answer else "Failure", "Reason": self.reason},
        ]


async def test_nothing_is_dialled_outside_the_allowed_hours(rc: Calls):
    w = rc.w
    await answered_ticket(rc)
    ami = RecordingAMI()
    dialler = ResultCallDialler(rc.calls, rc.calls.settings, ami, w.clock)  # type: ignore[arg-type]
    w.clock.set(datetime(2026, 11, 25, 14, 30, tzinfo=UTC))  # 21:30 local
    assert await dialler.tick() == 0 and ami.sent == []
    w.clock.set(datetime(2026, 11, 25, 23, 30, tzinfo=UTC))  # 06:30 local
    assert await dialler.tick() == 0 and ami.sent == []
    w.clock.set(datetime(2026, 11, 26, 1, 0, tzinfo=UTC))  # 08:00 local: now
    assert await dialler.tick() == 1
    for task in list(dialler._calls):
        await task
    (sent,) = ami.sent
    assert sent["Channel"] == "PJSIP/0901234567@carrier" and sent["Context"] == DIAL_CONTEXT
    assert sent["Timeout"] == str(rc.calls.settings.result_calls.ring_seconds * 1000)
    assert any(v.startswith("HOTLINE_RESULT_RECORDING=") for v in sent["Variable"])
    assert "0901234567" in dialler.ringing, "taken until the hang-up report"


async def test_a_busy_line_is_released_and_retried_later(rc: Calls):
    w = rc.w
    t = await answered_ticket(rc)
    ami = RecordingAMI(answer=False, reason="5")
    dialler = ResultCallDialler(rc.calls, rc.calls.settings, ami, w.clock)  # type: ignore[arg-type]
    assert await dialler.tick() == 1
    for task in list(dialler._calls):
        await task
    (job,) = await jobs(rc, t.id)
    assert (job.state, job.last_result) == ("pending", "busy") and dialler.ringing == {}
    assert await dialler.tick() == 0, "not before the retry interval"


def test_originate_reasons():
    assert Originated(True, "4").result == Result.CONNECTED
    assert Originated(False, "3").result == Result.NO_ANSWER
    assert Originated(False, "5").result == Result.BUSY
    assert Originated(False, "8").result == Result.FAILED
    assert Originated(False, None).result == Result.FAILED
