"""The overflow menu replayed from AGI dialogues recorded on the real Asterisk
(tests/callcenter/test_callbacks.py with the FastAGI trace on)."""

from __future__ import annotations

import wave
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import tomli_w
from sqlalchemy import select

from agi.ivr import IVR
from agi.overflow import OverflowMenu
from agi.protocol import FastAGIServer
from agi.routes import routes
from callcenter.callbacks import CallbackService
from callcenter.models import Callback, Outcome, Status, VoiceMessage
from callcenter.service import CallService, sanitize_caller
from core.clock import FakeClock
from core.db import Database
from tests.agi_replay import Transcript, replay
from tests.helpers import settings_in
from tests.lab import lab_config
from tests.schema import migrated

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=TZ)  # the day the dialogues were recorded


@pytest.fixture
async def server(tmp_path):
    cfg = lab_config()
    cfg["queues"]["overflow"] = {"offer_after_seconds": 10, "voice_message_seconds": 20}
    settings = settings_in(tmp_path, tomli_w.dumps(cfg))
    migrated(settings.database)
    db = Database(settings.database)
    calls = CallService(db, settings)
    await calls.sync_directory()
    clock = FakeClock(NOW)
    callbacks = CallbackService(db, settings, clock)
    srv = FastAGIServer(
        "127.0.0.1",
        0,
        routes(IVR(settings, calls, clock), OverflowMenu(settings, callbacks, clock)),
    )
    await srv.start()
    port = srv._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield settings, calls, db, port
    await srv.stop()
    await db.close()


async def queued(calls: CallService, transcript: Transcript, joined: datetime) -> None:
    uid = transcript.env_value("agi_uniqueid")
    caller = sanitize_caller(transcript.env_value("agi_callerid"))
    await calls.open_call(
        uniqueid=uid,
        linkedid=uid,
        hotline_number="1022",
        caller=caller,
        started_at=joined,
        language="vi",
        recording_base=None,
    )
    await calls.caller_joined(
        uniqueid=uid,
        linkedid=uid,
        queue="t1022-afternoon",
        hotline_number="1022",
        caller=caller,
        at=joined,
        recording_base=None,
        route_source="agi",
    )


async def test_no_caller_id_junk_refused_then_a_typed_number(server, tmp_path):
    settings, calls, db, port = server
    t = Transcript.load("overflow_callback_typed_after_junk", tmp_path)
    joined = datetime.fromtimestamp(int(t.env_value("agi_arg_3")), UTC)
    await queued(calls, t, joined)
    await replay(t, "127.0.0.1", port)
    uid = t.env_value("agi_uniqueid")
    call = await calls.get(uid)
    assert call.outcome == Outcome.CALLBACK
    assert call.ivr_path.endswith("queue:1 > callback:refused > callback:typed")
    async with db.session() as s:
        cb = await s.scalar(select(Callback).where(Callback.call_id == call.id))
    assert cb.number == "0912345678" and cb.number_source == "typed"
    assert cb.status == Status.PENDING and cb.queued_at == joined
    assert cb.team_id == "t1022" and cb.hotline_number == "1022"


async def test_final_offer_unanswered_says_goodbye(server, tmp_path):
    settings, calls, db, port = server
    t = Transcript.load("overflow_final_offer_silence", tmp_path)
    await queued(calls, t, datetime.fromtimestamp(int(t.env_value("agi_arg_3")), UTC))
    sent = await replay(t, "127.0.0.1", port)
    assert any("/goodbye" in line for line in sent)
    call = await calls.get(t.env_value("agi_uniqueid"))
    assert call.ivr_path.endswith("final:silence > goodbye")
    assert call.end_reason == "max_wait_goodbye"
    async with db.session() as s:
        assert await s.scalar(select(Callback)) is None


async def test_voice_message_kept_when_the_caller_hangs_up(server, tmp_path):
    # The recording ends with the socket closed (AGIEXITONHANGUP); the replayer
    # cannot close first, so the transcript's last line is the 511 Asterisk
    # answers on a dead channel otherwise: the same end for this layer.
    settings, calls, db, port = server
    t = Transcript.load("overflow_voice_message_then_hangup", tmp_path)
    await queued(calls, t, datetime.fromtimestamp(int(t.env_value("agi_arg_3")), UTC))
    uid = t.env_value("agi_uniqueid")
    # what Record() left behind on the real Asterisk: 3 s of audio
    path = settings.recordings_dir / "voicemail" / "2026" / "11" / "25" / f"{uid}.wav"
    path.parent.mkdir(parents=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x10" * 24000)
    await replay(t, "127.0.0.1", port)
    call = await calls.get(uid)
    assert call.outcome == Outcome.VOICEMAIL and call.end_reason == "voice_message"
    async with db.session() as s:
        vm = await s.scalar(select(VoiceMessage).where(VoiceMessage.uniqueid == uid))
    assert vm.path == str(path) and vm.seconds == 3.0
    assert vm.caller_number == t.env_value("agi_callerid") and vm.call_id == call.id


async def test_caller_id_confirmed_with_1_during_the_read_back(server, tmp_path):
    settings, calls, db, port = server
    t = Transcript.load("overflow_callback_caller_id_confirmed", tmp_path)
    joined = datetime.fromtimestamp(int(t.env_value("agi_arg_3")), UTC)
    await queued(calls, t, joined)
    sent = await replay(t, "127.0.0.1", port)
    # the number is read back digit by digit until the caller presses 1
    assert [line.split("/")[-1] for line in sent[:3]] == [
        'callback_number "1"',
        'digit-0 "1"',
        'digit-9 "1"',
    ]
    call = await calls.get(t.env_value("agi_uniqueid"))
    assert call.ivr_path.endswith("queue:1 > callback:caller_id")
    async with db.session() as s:
        cb = await s.scalar(select(Callback).where(Callback.call_id == call.id))
    assert cb.number == t.env_value("agi_callerid") and cb.number_source == "caller_id"
    assert cb.queued_at == joined


async def test_queue_full_offer_declined_joins_the_queue(server, tmp_path):
    settings, calls, db, port = server
    t = Transcript.load("overflow_queue_full_offer_declined", tmp_path)
    await opened(calls, t)
    sent = await replay(t, "127.0.0.1", port)
    assert sent[-1] == 'SET VARIABLE HOTLINE_OVERFLOW "queue"'
    call = await calls.get(t.env_value("agi_uniqueid"))
    assert call.ivr_path.endswith("full:silence") and call.outcome == Outcome.IN_IVR
    async with db.session() as s:
        assert await s.scalar(select(Callback)) is None


async def test_queue_full_callback_keeps_the_arrival_as_the_place(server, tmp_path):
    settings, calls, db, port = server
    t = Transcript.load("overflow_queue_full_callback", tmp_path)
    await opened(calls, t)
    await replay(t, "127.0.0.1", port)
    call = await calls.get(t.env_value("agi_uniqueid"))
    assert call.ivr_path.endswith("full:1 > callback:caller_id")
    assert call.outcome == Outcome.CALLBACK and call.queued_at is None
    async with db.session() as s:
        cb = await s.scalar(select(Callback).where(Callback.call_id == call.id))
    # never queued: the place is when the caller reached the queue's door
    assert cb.queued_at == datetime.fromtimestamp(int(t.env_value("agi_arg_3")), UTC)
    assert cb.team_id == "t1022" and cb.queue is None


async def opened(calls: CallService, transcript: Transcript) -> None:
    """A call the IVR registered and routed, that has not joined a queue."""
    uid = transcript.env_value("agi_uniqueid")
    await calls.open_call(
        uniqueid=uid,
        linkedid=uid,
        hotline_number="1022",
        caller=sanitize_caller(transcript.env_value("agi_callerid")),
        started_at=NOW,
        language="vi",
        recording_base=None,
    )
    await calls.ivr_done(uid, path="1:agent", choice="agent", language="vi")
