"""The callback list and voice messages on real SQLite and PostgreSQL: order, retries,
outcomes, recovery after a crash."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import tomli_w

from accounts.identity import SYSTEM
from callcenter.callbacks import CallbackService
from callcenter.exceptions import CallbackClosed
from callcenter.models import Outcome, Result, Status, VoiceStatus
from callcenter.service import CallService
from core.clock import FakeClock
from core.db import Database
from tests.helpers import queued_call, requested_callback, settings_in
from tests.lab import lab_config
from tests.schema import migrated
from tickets.service import TicketService

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2026, 11, 25, 15, 0, tzinfo=TZ)
QUEUE = "t1022-afternoon"  # on duty at T0


@pytest.fixture
async def env(tmp_path, database_url):
    cfg = lab_config(database_url=database_url)
    cfg["queues"]["overflow"] = {"callback_attempts": 2, "callback_retry_minutes": 10}
    settings = settings_in(tmp_path, tomli_w.dumps(cfg))
    migrated(settings.database)
    db = Database(settings.database)
    calls = CallService(db, settings)
    await calls.sync_directory()
    clock = FakeClock(T0)
    yield calls, CallbackService(db, settings, clock), clock
    await db.close()


async def test_callbacks_keep_the_place_of_the_first_join(env):
    calls, svc, clock = env
    await queued_call(calls, "pbx-1.1", "0901111111", started=T0, queue=QUEUE)
    await queued_call(
        calls, "pbx-1.2", "0902222222", started=T0 + timedelta(seconds=30), queue=QUEUE
    )
    clock.advance(timedelta(minutes=2))
    # the later caller asks first; the earlier one (who left the queue and came
    # back meanwhile: the dialplan passes when they first joined) asks after
    second = await requested_callback(svc, "pbx-1.2", "0902222222", T0 + timedelta(seconds=30))
    first = await svc.request(
        uniqueid="pbx-1.1",
        number="0901111111",
        number_source="typed",
        language="en",
        joined_at=T0,
    )
    again = await svc.request(
        uniqueid="pbx-1.1",
        number="0901111111",
        number_source="typed",
        language="en",
        joined_at=T0,
    )
    assert again.id == first.id, "one callback per call"
    assert [d.id for d in await svc.due()] == [first.id, second.id]
    assert first.team_id == "t1022" and first.queued_at == T0
    call = await calls.get("pbx-1.1")
    assert call.outcome == Outcome.CALLBACK and call.end_reason == "callback_requested"
    # the hang-up that follows keeps the outcome and closes the record
    await calls.hung_up(uniqueid="pbx-1.1", at=clock.now(), queue_status=None, cause="16")
    call = await calls.get("pbx-1.1")
    assert call.outcome == Outcome.CALLBACK and call.ended_at == clock.now()


async def test_retries_then_unreachable_and_agent_misses_do_not_count(env):
    calls, svc, clock = env
    await queued_call(calls, "pbx-2.1", "0903333333", started=T0, queue=QUEUE)
    cb = await requested_callback(svc, "pbx-2.1", "0903333333", None)
    assert await svc.start_attempt(cb.id, "1001", "cb-a") is not None
    assert await svc.start_attempt(cb.id, "1002", "cb-b") is None, "claimed once"
    assert await svc.due() == []
    # the agent's phone did not answer: not a try at the citizen
    after = await svc.finish_attempt("cb-a", Result.AGENT_MISSED)
    assert after.status == Status.PENDING and after.attempts == 0
    assert await svc.finish_attempt("cb-a", Result.CONNECTED) is None, "reported once"

    clock.advance(timedelta(seconds=31))
    await svc.start_attempt(cb.id, "1002", "cb-c")
    after = await svc.finish_attempt("cb-c", Result.NO_ANSWER, detail="dial:NOANSWER")
    assert after.status == Status.PENDING and after.attempts == 1
    assert after.next_attempt_at == clock.now() + timedelta(minutes=10)
    assert await svc.due() == [], "not before the retry time"
    clock.advance(timedelta(minutes=10))
    assert [d.id for d in await svc.due()] == [cb.id]
    await svc.start_attempt(cb.id, "1001", "cb-d")
    after = await svc.finish_attempt("cb-d", Result.BUSY)
    assert after.status == Status.DONE and after.outcome == Result.UNREACHABLE
    results = [a.result for a in await svc.attempts_of(cb.id)]
    assert results == [Result.AGENT_MISSED, Result.NO_ANSWER, Result.BUSY]


async def test_connected_callback_gets_its_own_call_record(env):
    calls, svc, clock = env
    await queued_call(calls, "pbx-3.1", "0904444444", started=T0, queue=QUEUE)
    cb = await requested_callback(svc, "pbx-3.1", "0904444444", T0)
    clock.advance(timedelta(minutes=5))
    started = await svc.start_attempt(cb.id, "1001", "cb-x1")
    # the record exists from the first ring: a ticket can be linked during the call
    live = await calls.by_id(started.call_id)
    assert live.uniqueid == "cb-x1" and live.ended_at is None and live.answered_at is None
    assert live.outcome == Outcome.CALLBACK, "not an answered call before the citizen answers"
    assert live.caller_number == "0904444444" and live.agent_extension == "1001"
    assert live.hotline_number == "1022" and live.route_source == "callback"
    clock.advance(timedelta(seconds=40))
    done = await svc.finish_attempt(
        "cb-x1", Result.CONNECTED, talk_seconds=30, recording_base="/rec/2026/11/25/cb-x1"
    )
    assert done.status == Status.DONE and done.outcome == Result.CONNECTED
    assert done.result_call_id == started.call_id, "the same record, completed"
    back = await calls.by_id(done.result_call_id)
    assert back.uniqueid == "cb-x1" and back.route_source == "callback"
    assert back.caller_number == "0904444444" and back.agent_extension == "1001"
    assert back.outcome == Outcome.ANSWERED and back.talk_seconds == 30
    assert back.recording_caller == "/rec/2026/11/25/cb-x1-in.wav"
    assert back.hold_seconds == 300  # from first joining the queue to the callback
    assert back.answered_at == clock.now() - timedelta(seconds=30)
    assert back.ended_at == clock.now() and back.end_reason == "callback"


async def test_restart_puts_interrupted_attempts_back(env):
    calls, svc, clock = env
    await queued_call(calls, "pbx-4.1", "0905555555", started=T0, queue=QUEUE)
    cb = await requested_callback(svc, "pbx-4.1", "0905555555", T0)
    started = await svc.start_attempt(cb.id, "1001", "cb-r1")
    assert await svc.recover() == 1
    again = await svc.get(cb.id)
    assert again.status == Status.PENDING and again.attempts == 0
    assert [a.detail for a in await svc.attempts_of(cb.id)] == ["interrupted"]
    record = await calls.by_id(started.call_id)
    assert record.ended_at == clock.now() and record.end_reason == "callback_interrupted"


async def test_panel_actions(env):
    calls, svc, clock = env
    await queued_call(calls, "pbx-5.1", "0906666666", started=T0, queue=QUEUE)
    cb = await requested_callback(svc, "pbx-5.1", "0906666666", T0)
    taken = await svc.call_now(cb.id, "1003")
    assert taken.assigned_extension == "1003"
    assert (await svc.due())[0].assigned_extension == "1003"
    with pytest.raises(ValueError, match="outcome"):
        await svc.record_outcome(cb.id, Result.CANCELLED, "An", "1003", None)
    after = await svc.record_outcome(cb.id, Result.NO_ANSWER, "An", "1003", "máy bận")
    assert after.status == Status.PENDING and after.attempts == 1 and after.note == "máy bận"
    cancelled = await svc.cancel(cb.id, "Supervisor", "duplicate")
    assert cancelled.outcome == Result.CANCELLED and cancelled.closed_by == "Supervisor"
    with pytest.raises(CallbackClosed):
        await svc.cancel(cb.id, "Supervisor")
    with pytest.raises(CallbackClosed):
        await svc.call_now(cb.id, "1003")


async def test_voice_messages(env, tmp_path):
    calls, svc, clock = env
    await queued_call(calls, "pbx-6.1", None, started=T0, queue=QUEUE)
    vm = await svc.voice_message(
        uniqueid="pbx-6.1", path=str(tmp_path / "m.wav"), seconds=4.2, language="vi"
    )
    assert (
        await svc.voice_message(uniqueid="pbx-6.1", path="other", seconds=1, language="vi")
    ).id == vm.id
    call = await calls.get("pbx-6.1")
    assert call.outcome == Outcome.VOICEMAIL and vm.call_id == call.id
    assert [m.id for m in await svc.voice_messages("t1022")] == [vm.id]
    assert await svc.voice_messages("party") == []
    with pytest.raises(ValueError, match="number"):
        await svc.voice_to_callback(vm.id, "An")  # no caller ID and none typed
    with pytest.raises(ValueError, match="number"):
        await svc.voice_to_callback(vm.id, "An", "12345")
    cb = await svc.voice_to_callback(vm.id, "An", "0907777777")
    assert cb.number == "0907777777" and cb.number_source == "voice_message"
    assert cb.queued_at == T0
    msg = await svc.voice_message_by_id(vm.id)
    assert msg.status == VoiceStatus.CALLBACK and msg.callback_id == cb.id
    assert await svc.voice_messages() == []


async def test_each_try_has_its_record_from_the_first_ring(env):
    """What the agent's pop is built from, and what each kind of ending leaves behind."""
    calls, svc, clock = env
    await queued_call(calls, "pbx-7.1", "0908888888", started=T0, queue=QUEUE)
    await calls.ivr_done(
        "pbx-7.1",
        path="1:agent > queue:1 > callback:caller_id",
        choice="agent",
        language="vi",
    )
    clock.advance(timedelta(minutes=1))
    cb = await requested_callback(svc, "pbx-7.1", "0908888888", T0)
    clock.advance(timedelta(minutes=3))
    first = await svc.start_attempt(cb.id, "1001", "cb-t1")
    info = first.info
    assert (info.callback_id, info.attempt, info.attempts) == (cb.id, 1, 2)
    assert info.requested_at == T0 + timedelta(minutes=1) and info.queued_at == T0
    assert info.number_source == "caller_id" and info.voice_message_id is None
    assert info.ivr_path == "1:agent > queue:1 > callback:caller_id", "the asking call's menu path"
    after = await svc.finish_attempt("cb-t1", Result.NO_ANSWER, detail="dial:NOANSWER")
    assert after.result_call_id is None
    tried = await calls.by_id(first.call_id)
    assert tried.ended_at == clock.now() and tried.end_reason == "callback_no_answer"
    assert tried.outcome == Outcome.CALLBACK and tried.answered_at is None
    earlier = await calls.earlier_calls("0908888888", before="cb-x")
    assert [c["uniqueid"] for c in earlier] == ["cb-t1", "pbx-7.1"], "the try is a call too"

    # the agent's phone did not take the second: the citizen was never dialled, no record
    clock.advance(timedelta(minutes=10))
    second = await svc.start_attempt(cb.id, "1002", "cb-t2")
    assert second.info.attempt == 2 and second.call_id != first.call_id
    await svc.finish_attempt("cb-t2", Result.AGENT_MISSED, detail="agent:0")
    assert await calls.by_id(second.call_id) is None
    assert await calls.get("cb-t2") is None

    # ...unless a ticket was linked to it while the phone rang: then it stays
    clock.advance(timedelta(seconds=31))
    third = await svc.start_attempt(cb.id, "1002", "cb-t3")
    assert third.info.attempt == 2, "a missed ring is not a try"
    tickets = TicketService(svc.db, svc.settings, clock)
    ticket = await tickets.create(
        SYSTEM,
        {
            "channel": "phone",
            "domain": "state",
            "topic": "flooding",
            "level": 2,
            "description": "Ngập nước hẻm 12",
        },
        call_id=third.call_id,
    )
    assert ticket.citizen_phone == "0908888888", "the number comes from the try's record"
    await svc.finish_attempt("cb-t3", Result.AGENT_MISSED, detail="agent:0")
    kept = await calls.by_id(third.call_id)
    assert kept is not None and kept.end_reason == "callback_agent_missed"
    assert (await svc.get(cb.id)).status == Status.PENDING


async def test_a_voice_message_callback_carries_its_message(env, tmp_path):
    calls, svc, clock = env
    await queued_call(calls, "pbx-7.2", "0909999999", started=T0, queue=QUEUE)
    vm = await svc.voice_message(
        uniqueid="pbx-7.2", path=str(tmp_path / "m.wav"), seconds=6.5, language="vi"
    )
    cb = await svc.voice_to_callback(vm.id, "An")
    started = await svc.start_attempt(cb.id, "1001", "cb-v1")
    assert started.info.number_source == "voice_message"
    assert started.info.voice_message_id == vm.id
    assert started.info.voice_message_seconds == 6.5
    pop = started.info.as_pop()
    assert pop["voice_message"]["url"] == f"/callbacks/voice/{vm.id}/audio"
    # cancelled while being dialled: the try's record still says how the call went
    await svc.cancel(cb.id, "Supervisor")
    await svc.finish_attempt("cb-v1", Result.CONNECTED, talk_seconds=12, recording_base=None)
    record = await calls.by_id(started.call_id)
    assert record.outcome == Outcome.ANSWERED and record.talk_seconds == 12
    assert (await svc.get(cb.id)).outcome == Result.CANCELLED


async def test_a_hang_up_read_before_the_message_is_kept_does_not_undo_it(
    env, tmp_path, monkeypatch
):
    """The caller hangs up while leaving a message: the channel's end (AMI) and the
    message (the AGI, a moment later) close the same record side by side.  A hang-up
    that read the record before the message was kept must not write its older view
    over it: the record ends as a voice message, its hang-up time kept."""
    calls, svc, clock = env
    await queued_call(calls, "pbx-9.1", "0909999999", started=T0, queue=QUEUE)
    legs_talk = CallService._legs_talk
    kept: list[asyncio.Task[object]] = []

    async def message_meanwhile(session, call):  # between the hang-up's read and its write
        kept.append(
            asyncio.create_task(
                svc.voice_message(
                    uniqueid="pbx-9.1", path=str(tmp_path / "m.wav"), seconds=3, language="vi"
                )
            )
        )
        await asyncio.sleep(0.3)  # time enough for the message to be kept, if it can be
        return await legs_talk(session, call)

    monkeypatch.setattr(CallService, "_legs_talk", staticmethod(message_meanwhile))
    ended = clock.now()
    await calls.hung_up(uniqueid="pbx-9.1", at=ended, queue_status=None, cause="Unknown")
    await asyncio.wait_for(kept[0], 10)
    call = await calls.get("pbx-9.1")
    assert (call.outcome, call.end_reason) == (Outcome.VOICEMAIL, "voice_message")
    assert call.ended_at == ended
